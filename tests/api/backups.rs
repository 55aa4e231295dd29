//! Backup listing and download: headers, digests, conditional and range requests.

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{CONTROLLER, spawn_app};

#[tokio::test]
async fn backups_download_with_digests_and_ranges() {
    let app = spawn_app().await;
    let run = app.start("backup", CONTROLLER, json!({})).await;
    let run = app.wait_state(run["id"].as_str().unwrap(), "succeeded").await;
    let listed = app.get_json("/api/v1/backups").await;
    let backup = &listed.as_array().unwrap()[0];
    assert_eq!(backup["url"], run["backups"][0]["url"]);
    let url = backup["url"].as_str().unwrap();
    let sha = backup["sha256"].as_str().unwrap();
    let name = backup["name"].as_str().unwrap();

    let res = app.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let body = res.bytes().await.unwrap();
    assert_eq!(h["content-length"].to_str().unwrap(), body.len().to_string());
    assert_eq!(body.len() as i64, backup["size_bytes"].as_i64().unwrap());
    assert_eq!(
        h["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{name}\"")
    );
    assert_eq!(h["etag"].to_str().unwrap(), format!("\"{sha}\""));
    assert_eq!(h["accept-ranges"], "bytes");
    let digest = Sha256::digest(&body);
    assert_eq!(hex::encode(digest), sha);
    let expected = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    assert_eq!(h["repr-digest"].to_str().unwrap(), expected);

    // a range
    let res = app.get(url).header("Range", "bytes=0-9").send().await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-9/{}", body.len())
    );
    assert_eq!(
        res.headers()["repr-digest"].to_str().unwrap(),
        expected,
        "the digest of the whole representation"
    );
    assert_eq!(res.bytes().await.unwrap(), body.slice(0..10));
    // a suffix range
    let res = app.get(url).header("Range", "bytes=-5").send().await.unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap(), body.slice(body.len() - 5..));
    // beyond the end
    let res = app
        .get(url)
        .header("Range", format!("bytes={}-", body.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(
        res.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{}", body.len())
    );
    // a stale If-Range: the whole file
    let res = app
        .get(url)
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // unchanged
    let res = app
        .get(url)
        .header("If-None-Match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    let res = app
        .get("/api/v1/backups/..%2F..%2Fetc%2Fpasswd")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string());
    app.stop().await;
}
