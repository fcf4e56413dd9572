"""One widget per tab of the desktop client's window."""
