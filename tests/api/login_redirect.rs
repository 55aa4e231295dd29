//! After signing in the browser goes back to the page it came from, and never to another site:
//! hostile `next` values (issue 19 item 1: `/\t/evil.example`, which Chromium reads as
//! `//evil.example`; CR/LF, which broke the `Location` header into a 500), percent-encoded in the
//! query and the form as a browser sends them, and raw in the request line.

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{TOKEN, TestApp, spawn_app};

/// `next` values that must all end at `/`.
const HOSTILE: &[&str] = &[
    "/\t/evil.example",
    "/\t\t/evil.example/path",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\r\nSet-Cookie: lm_session=forged",
    "/x\r\nLocation: https://evil.example/",
    "//evil.example",
    "///evil.example",
    "//evil.example/%2F..",
    "/\\evil.example",
    "/\\/evil.example",
    "\\\\evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "/./\t/evil.example",
    "https://evil.example/",
    "HTTPS://evil.example/",
    "http:evil.example",
    "http:/evil.example",
    "javascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    " //evil.example",
    "\u{0}//evil.example",
    "/\u{0}/evil.example",
    "/\u{7f}/evil.example",
    "/\u{85}/evil.example",
    "",
];

/// Same-origin paths kept as the parser serializes them.
const BENIGN: &[(&str, &str)] = &[
    ("/", "/"),
    ("/backups", "/backups"),
    ("/runs/0193b2c4?x=1&y=%20z", "/runs/0193b2c4?x=1&y=%20z"),
    ("/runs/a b", "/runs/a%20b"),
    ("/%2F/evil.example", "/%2F/evil.example"),
    ("/%09/evil.example", "/%09/evil.example"),
    ("/@evil.example", "/@evil.example"),
    ("/runs/../backups", "/backups"),
];

async fn session_cookie(app: &TestApp) -> String {
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// The text of an HTML attribute value (askama escapes with numeric or named entities).
fn unescape(attr: &str) -> String {
    let mut out = String::new();
    let mut rest = attr;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(';')
            .map(|e| at + e)
            .expect("an entity ends with ;");
        let entity = &rest[at + 1..end];
        let c = match entity {
            "amp" => '&',
            "quot" => '"',
            "lt" => '<',
            "gt" => '>',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x").or_else(|| entity.strip_prefix("#X")) {
                    Some(hex) => u32::from_str_radix(hex, 16),
                    None => entity.trim_start_matches('#').parse(),
                };
                char::from_u32(code.expect("a numeric entity")).expect("a character")
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out + rest
}

/// Where each way of handing `next` to the server sends the browser: the form of the login page,
/// the sign-in POST, and the login page of a browser that is already signed in.
async fn destinations(app: &TestApp, cookie: &str, next: &str) -> Vec<(&'static str, String)> {
    let query = serde_urlencoded::to_string([("next", next)]).unwrap();
    let form = app
        .client
        .get(app.url(&format!("/login?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200, "login page for {next:?}");
    let html = form.text().await.unwrap();
    let field = r#"name="next" value=""#;
    let at = html.find(field).expect("the next field") + field.len();
    let in_form = unescape(html[at..].split('"').next().unwrap());

    let post = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 303, "sign-in with next {next:?}");
    let after_post = post.headers()[LOCATION].to_str().unwrap().to_string();

    let signed_in = app
        .client
        .get(app.url(&format!("/login?{query}")))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "signed-in login page for {next:?}");
    let after_get = signed_in.headers()[LOCATION].to_str().unwrap().to_string();
    vec![
        ("login form", in_form),
        ("sign-in POST", after_post),
        ("signed-in GET", after_get),
    ]
}

#[tokio::test]
async fn a_hostile_next_never_leaves_the_site() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app).await;

    for next in HOSTILE {
        for (how, location) in destinations(&app, &cookie, next).await {
            assert_eq!(location, "/", "{how} with next {next:?}");
        }
    }
    for (next, expected) in BENIGN {
        for (how, location) in destinations(&app, &cookie, next).await {
            assert_eq!(&location, expected, "{how} with next {next:?}");
        }
    }
    app.stop().await;
}

/// The status line and `Location` of a request sent byte for byte.
async fn raw_request(app: &TestApp, request: &[u8]) -> (String, Option<String>) {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server neither answered nor closed");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let location = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(str::to_string);
    (status, location)
}

#[tokio::test]
async fn an_unencoded_next_in_the_request_line_is_refused_or_sent_home() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app).await;

    for target in [
        "/login?next=/\t/evil.example",
        "/login?next=//evil.example",
        "/login?next=/\\evil.example",
        "/login?next=https://evil.example/",
        "/login?next=%2F%09%2Fevil.example",
        "/login?next=%2F%0D%0ALocation:%20https://evil.example/",
    ] {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let (status, location) = raw_request(&app, request.as_bytes()).await;

        let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!(
            code == 303 || (400..500).contains(&code),
            "{target:?}: {status:?} (never a server error)"
        );
        if code == 303 {
            assert_eq!(location.as_deref(), Some("/"), "{target:?}");
        } else {
            assert_eq!(location, None, "{target:?}");
        }
    }
    app.stop().await;
}
