//! The client against Python's http.server and against our server.
