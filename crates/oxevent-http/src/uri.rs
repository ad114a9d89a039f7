//! URIs (RFC 3986) and the encoding helpers of libevent's `evhttp_uri_*`, `evhttp_encode_uri`, `evhttp_decode_uri`, `evhttp_parse_query_str` and `evhttp_htmlescape`: work in progress, see issue 6.
