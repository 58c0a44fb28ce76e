from gan.cli import app

app(prog_name="gan")
