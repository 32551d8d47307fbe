//! Tests of the embedded web app routes: pages, files, cache headers, validators and `/config.json`.

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use tower::ServiceExt;

use super::*;

/// True when this binary was built with the web app (the normal case; CI builds it).
fn built() -> bool {
    find("index.html").is_some()
}

async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: Response) -> String {
    String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

#[test]
fn web_app_is_embedded_unless_skipped() {
    if option_env!("CONVENE_SKIP_WEB_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        return;
    }
    assert!(built(), "web/dist/index.html is not embedded");
    assert!(
        FILES
            .iter()
            .any(|a| a.path.starts_with("assets/") && a.path.ends_with(".js")),
        "no script bundle"
    );
    assert!(
        FILES
            .iter()
            .any(|a| a.path.starts_with("excalidraw/fonts/")),
        "Excalidraw fonts are not embedded"
    );
    assert!(
        FILES.windows(2).all(|w| w[0].path < w[1].path),
        "asset table must be sorted for binary search"
    );
}

#[tokio::test]
async fn welcome_and_room_pages_serve_index_with_branded_title() {
    if !built() {
        return;
    }
    let config = Config {
        app_name: "Acme <Meet>".into(),
        ..Config::default()
    };
    let app = router(&config);
    for path in ["/", "/daily-standup", "/index.html"] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "no-cache",
            "{path}"
        );
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let body = text(response).await;
        assert!(body.contains("<title>Acme &lt;Meet&gt;</title>"), "{body}");
        assert!(body.contains("<div id=\"root\">"));
    }
}

#[tokio::test]
async fn hashed_files_are_immutable_and_revalidate_with_etag() {
    if !built() {
        return;
    }
    let app = router(&Config::default());
    let script = FILES
        .iter()
        .find(|a| a.path.starts_with("assets/") && a.path.ends_with(".js"))
        .unwrap();
    let response = get(&app, &format!("/{}", script.path), &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .len(),
        script.body.len()
    );

    let again = get(
        &app,
        &format!("/{}", script.path),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(
        to_bytes(again.into_body(), usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn index_validator_changes_with_the_branding() {
    if !built() {
        return;
    }
    let a = get(&router(&Config::default()), "/", &[]).await;
    let b = get(
        &router(&Config {
            app_name: "Other".into(),
            ..Config::default()
        }),
        "/",
        &[],
    )
    .await;
    assert_ne!(a.headers()[header::ETAG], b.headers()[header::ETAG]);
}

#[tokio::test]
async fn unknown_files_and_deep_paths_are_not_found() {
    let app = router(&Config::default());
    for path in [
        "/assets/nope.js",
        "/api/v1/unknown",
        "/.env",
        "/%41",
        "/a/b",
    ] {
        let response = get(&app, path, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn other_methods_are_refused() {
    let app = router(&Config::default());
    let req = Request::builder()
        .method("POST")
        .uri("/room")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn config_json_publishes_the_ui_section() {
    let config = Config {
        prejoin: false,
        accent_color: "#abc".into(),
        ..Config::default()
    };
    let response = get(&router(&config), "/config.json", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    let json: serde_json::Value = serde_json::from_str(&text(response).await).unwrap();
    assert_eq!(json["prejoin"], false);
    assert_eq!(json["accent_color"], "#abc");
    assert_eq!(json["app_name"], "Convene");
    assert_eq!(json["moderator_indicator"], true);
}

#[test]
fn ui_section_keeps_defaults_and_rejects_bad_values() {
    let partial: Config = toml::from_str("watermark = false").unwrap();
    assert_eq!(
        partial,
        Config {
            watermark: false,
            ..Config::default()
        }
    );
    let unknown = toml::from_str::<Config>("prejoin_page = false")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("prejoin_page"), "{unknown}");
    for bad in ["red", "#12", "#1234567", "#ggg", "", "url(x)"] {
        let err = toml::from_str::<Config>(&format!("accent_color = {bad:?}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a colour"), "{bad}: {err}");
    }
    assert!(toml::from_str::<Config>("accent_color = \"#A1b2C3\"").is_ok());
}

#[test]
fn pages_are_single_segments_with_room_name_characters() {
    assert!(is_page(""));
    assert!(is_page("team-sync"));
    assert!(is_page("Team.Sync_2"));
    assert!(!is_page(".hidden"));
    assert!(!is_page("api/v1/rooms"));
    assert!(!is_page("caf%C3%A9"));
    assert!(!is_page(&"a".repeat(65)));
}

#[tokio::test]
async fn gzip_form_is_sent_to_clients_that_accept_it() {
    let Some(gz) = FILES
        .iter()
        .find(|a| a.path.starts_with("assets/") && a.path.ends_with(".js.gz"))
    else {
        assert!(!built(), "the web build produced no gzipped scripts");
        return;
    };
    let path = format!("/{}", gz.path.trim_end_matches(".gz"));
    let plain = find(path.trim_start_matches('/')).unwrap();
    let app = router(&Config::default());

    let zipped = get(&app, &path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(zipped.headers()[header::VARY], "accept-encoding");
    assert!(
        zipped.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let body = to_bytes(zipped.into_body(), usize::MAX).await.unwrap();
    assert_eq!(&body[..], gz.body);
    assert!(body.len() < plain.body.len());

    for refuse in [None, Some("gzip;q=0"), Some("br")] {
        let headers: Vec<(&str, &str)> =
            refuse.map(|v| ("accept-encoding", v)).into_iter().collect();
        let response = get(&app, &path, &headers).await;
        assert!(
            response.headers().get(header::CONTENT_ENCODING).is_none(),
            "{refuse:?}"
        );
        assert_eq!(
            to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap()
                .len(),
            plain.body.len()
        );
    }
}
