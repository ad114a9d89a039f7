//! Routing: the host a request names, virtual hosts (glob patterns and aliases), the route
//! for a path, and the method check.

use std::borrow::Cow;

use super::{Route, Servers};
use crate::proto::{Method, RequestHead};
use oxevent_bufferevent::slab::Key;

/// Matches `text` against a glob `pattern` (`*`: any run, `?`: any one byte), ASCII
/// case-insensitively, with backtracking to the last star only (linear per star).
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The host a request is for, lowercased, without the port: the authority of an
/// absolute-form target, else the `Host` header (`evhttp_request_get_host`).
pub(crate) fn request_host(head: &RequestHead) -> Option<String> {
    let raw: &str = if let Some(rest) = head
        .target
        .strip_prefix("http://")
        .or_else(|| head.target.strip_prefix("https://"))
    {
        rest.split(['/', '?']).next().unwrap_or("")
    } else {
        head.headers.get_str("host")?
    };
    let raw = raw.rsplit('@').next().unwrap_or(raw).trim();
    let host = if let Some(v6) = raw.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The server whose routes serve `host`: a virtual host of `root` (recursively) whose
/// pattern or alias matches, else `root`.
pub(crate) fn pick_server(s: &Servers, root: Key, host: Option<&str>) -> Key {
    let Some(host) = host else { return root };
    let mut cur = root;
    // Bounded: each step goes one level down a tree of distinct servers.
    for _ in 0..16 {
        let Some(srv) = s.servers.get(cur) else {
            return cur;
        };
        let next = srv.vhosts.iter().find(|(pattern, v)| {
            glob(pattern.as_bytes(), host.as_bytes())
                || s.servers.get(*v).is_some_and(|vd| {
                    vd.aliases
                        .iter()
                        .any(|a| glob(a.as_bytes(), host.as_bytes()))
                })
        });
        match next {
            Some((_, v)) => cur = *v,
            None => return cur,
        }
    }
    cur
}

/// The path of a request target, percent-decoded, without the query: what routes match.
pub(crate) fn route_path(target: &str) -> Cow<'_, str> {
    let path = if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        target
    };
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if path.contains('%') {
        match crate::uri::decode(path, false) {
            Ok(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => Cow::Borrowed(path),
        }
    } else {
        Cow::Borrowed(path)
    }
}

/// What a request is routed to.
pub(crate) enum Target {
    Route(Route),
    NotFound,
    MethodNotAllowed(String),
}

/// Routes a request arriving on a server of `root`.
pub(crate) fn resolve(s: &Servers, root: Key, head: &RequestHead) -> Target {
    let Some(rootd) = s.servers.get(root) else {
        return Target::NotFound;
    };
    let allowed = rootd.cfg.allowed.contains(&head.method)
        || matches!(&head.method, Method::Extension(_))
            && rootd
                .cfg
                .ext_method
                .as_ref()
                .is_some_and(|f| f(head.method.as_str()));
    if !allowed {
        return Target::MethodNotAllowed(rootd.cfg.allowed.allow_header());
    }
    let srv = if rootd.vhosts.is_empty() {
        root
    } else {
        pick_server(s, root, request_host(head).as_deref())
    };
    let Some(d) = s.servers.get(srv) else {
        return Target::NotFound;
    };
    let path = route_path(&head.target);
    match d.routes.get(&*path).or(d.gencb.as_ref()) {
        Some(r) => Target::Route(r.clone()),
        None => Target::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"*.example.com", b"www.example.com"));
        assert!(glob(b"*.example.com", b"a.b.example.com"));
        assert!(!glob(b"*.example.com", b"example.com"));
        assert!(glob(b"ex?mple.*", b"EXAMPLE.org"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(!glob(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn paths() {
        assert_eq!(route_path("/a%20b?x=1"), "/a b");
        assert_eq!(route_path("http://h:1/p?q"), "/p");
        assert_eq!(route_path("http://h"), "/");
        assert_eq!(route_path("/plain"), "/plain");
    }
}
