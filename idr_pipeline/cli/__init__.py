"""The ``idr`` command line: thin commands over the stage steps, the API and the dev tools."""
