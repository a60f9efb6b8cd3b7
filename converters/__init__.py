"""One module per conversion route; the route table is :mod:`edgekit.routes`."""
