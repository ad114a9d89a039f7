//! URI parsing, joining and the encoding helpers.
