from binsal.cli import entry_point

entry_point()
