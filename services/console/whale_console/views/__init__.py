"""The console's pages, one module per page (the order of the menu: :mod:`whale_console.nav`)."""
