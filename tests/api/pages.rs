//! The pages: login, session cookie, CSRF, the forms and what the pages show.

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::common::{CONTROLLER, TOKEN, TestApp, spawn_app};

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn login(app: &TestApp) -> String {
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN), ("next", "/backups")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/backups");
    let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let res = app
        .client
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    res.text().await.unwrap()
}

#[tokio::test]
async fn login_session_and_csrf_protect_the_forms() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2F");
    let login_page = app.client.get(app.url("/login?next=%2F")).send().await.unwrap();
    assert_eq!(login_page.status(), 200);
    assert!(
        login_page
            .text()
            .await
            .unwrap()
            .contains(r#"<label for="token">"#)
    );

    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get(SET_COOKIE).is_none());
    // never redirected off-site after login
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/");

    let cookie = login(&app).await;
    let html = page(&app, &cookie, "/").await;
    assert!(
        html.contains("LINSTOR controllers") && html.contains(CONTROLLER),
        "dashboard lists controllers"
    );
    assert!(html.contains("Demo mode"), "the simulated cluster is announced");
    assert!(html.contains("signed in as <strong>ops</strong>"));
    let csrf = csrf_of(&html);

    // a form POST without (or with a wrong) token is refused and starts nothing
    for fields in [
        vec![("kind", "preflight"), ("controller", CONTROLLER)],
        vec![
            ("kind", "preflight"),
            ("controller", CONTROLLER),
            ("csrf", "forged"),
        ],
    ] {
        let res = app
            .client
            .post(app.url("/runs"))
            .header(COOKIE, &cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
    assert!(app.get_json("/api/v1/runs").await.as_array().unwrap().is_empty());
    // the session cookie works for reading the API, not for changing it without the header
    let res = app
        .client
        .get(app.url("/api/v1/runs"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/api/v1/runs"))
        .header(COOKIE, &cookie)
        .json(&json!({"kind": "preflight", "controller": CONTROLLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // with the token: the run starts and the browser goes to its page
    let fields = [
        ("kind", "preflight"),
        ("controller", CONTROLLER),
        ("csrf", csrf.as_str()),
    ];
    let res = app
        .client
        .post(app.url("/runs"))
        .header(COOKIE, &cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let id = location.strip_prefix("/runs/").unwrap().to_string();
    app.wait_state(&id, "succeeded").await;
    let html = page(&app, &cookie, &location).await;
    assert!(html.contains("Preflight checks") && html.contains("Audit trail"));
    assert!(html.contains(r#"class="log""#));

    // sign out: the cookie is no longer accepted
    let res = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = app
        .client
        .get(app.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn run_page_actions_are_confirmed_and_audited() {
    let app = spawn_app().await;
    let cookie = login(&app).await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;
    let html = page(&app, &cookie, &format!("/runs/{id}")).await;
    assert!(html.contains("Approve downtime") && html.contains("Cancel and roll back"));
    assert!(html.contains("Stop controller") && html.contains("step-downtime"));
    let csrf = csrf_of(&html);

    // without confirmation: a confirmation page, nothing happens
    let path = format!("/runs/{id}/approve");
    let res = app
        .client
        .post(app.url(&path))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains(r#"name="confirmed" value="yes""#)
    );
    assert_eq!(
        app.get_json(&format!("/api/v1/runs/{id}")).await["state"],
        "waiting"
    );
    // confirmed: done, and back to the run page
    let res = app
        .client
        .post(app.url(&path))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("confirmed", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"].to_str().unwrap(), format!("/runs/{id}"));
    let run = app.wait_state(id, "succeeded").await;
    assert!(
        run["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "approve" && a["actor"] == "ops")
    );

    let html = page(&app, &cookie, &format!("/runs/{id}")).await;
    assert!(
        html.contains("Download backup") && html.contains("SHA-256"),
        "backup link with its digest"
    );
    assert!(html.contains("Data verification"));
    assert!(html.contains("Controller downtime"));
    assert!(html.contains("approve"), "the audit trail shows the approval");
    // a second approval is refused with a message, not an error page
    let res = app
        .client
        .post(app.url(&path))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("confirmed", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = page(&app, &cookie, &format!("/runs/{id}")).await;
    assert!(
        html.contains("flash-error") && html.contains("cannot approve"),
        "{}",
        &html[..2000.min(html.len())]
    );

    for path in ["/runs", "/backups"] {
        let html = page(&app, &cookie, path).await;
        assert!(
            html.contains(&id[id.len() - 8..]) || html.contains("backup"),
            "{path}"
        );
    }
    let res = app
        .client
        .get(app.url("/runs/unknown"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app.client.get(app.url("/static/app.css")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let _: Option<Value> = None;
    app.stop().await;
}

#[tokio::test]
async fn a_long_log_shows_its_last_lines_with_their_numbers() {
    let app = spawn_app().await;
    let cookie = login(&app).await;
    let run = app
        .start("migrate", CONTROLLER, json!({"approve_before_downtime": true}))
        .await;
    let id = run["id"].as_str().unwrap();
    app.wait_state(id, "waiting").await;
    // 6,000 more lines, as a chatty tool would write them
    let db = linstor_migrator::db::Db::open(&app.data_dir).await.unwrap();
    let messages: Vec<String> = (0..6000).map(|i| format!("bulk line {i}.")).collect();
    let lines: Vec<(&str, &str)> = messages.iter().map(|m| ("stdout", m.as_str())).collect();
    db.append_lines(id, None, &lines).await.unwrap();
    let total = app.engine.log_tail(id, 1).await.unwrap().1;
    assert!(total > 6000);
    let hidden = total - 5000;

    let html = page(&app, &cookie, &format!("/runs/{id}")).await;
    assert_eq!(html.matches(r#"<li class="ll "#).count(), 5000);
    assert!(html.contains(&format!(r#"id="L{total}""#)));
    assert!(html.contains(&format!(r#"id="L{}""#, hidden + 1)));
    assert!(!html.contains(&format!(r#"id="L{hidden}""#)));
    assert!(html.contains("bulk line 5999.") && !html.contains("bulk line 0."));
    assert!(html.contains(&format!(
        r#"<span id="log-hidden-count">{hidden}</span> earlier lines"#
    )));
    assert!(html.contains(&format!(r#"data-first-line="{}""#, hidden + 1)));
}
