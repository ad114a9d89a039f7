//! The server against curl, Python's http.client, ab and raw sockets.
