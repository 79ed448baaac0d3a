"""The offline HTML report: the page, the data it shows, its sections and its charts."""
