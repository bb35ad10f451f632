"""The HTTP edge: URLs, thin views, auth and scope, the error tree and its renderer, the pages."""
