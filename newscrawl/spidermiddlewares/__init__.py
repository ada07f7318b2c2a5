"""Spider middlewares of newscrawl: policies applied to the requests a spider yields."""
