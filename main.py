from gan.cli import app

app()
