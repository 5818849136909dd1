"""One thin Typer module per command group: parse flags, call the capability package, render."""
