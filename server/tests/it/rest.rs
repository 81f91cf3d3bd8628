//! The REST API with a real HTTP client, sharing its catalog with SQL.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::SimpleQueryMessage;

use crate::support::{DataDir, connect, start_in};

fn url(server: &server::Server, path: &str) -> String {
    format!("http://{}{path}", server.http_addr)
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn profiles_and_tables_are_one_catalog_with_sql() {
    let dir = DataDir::new("rest-catalog");
    let server = start_in(&dir, None).await;
    let http = Client::new();
    let pg = connect(&server).await;

    let (status, body) = send(http.get(url(&server, "/v1/ping"))).await;
    assert_eq!((status, body), (StatusCode::OK, json!("Pong")));

    // A profile, in the product page's shape.
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_profiles"))
            .json(&json!({
                "name": "gen", "connector": "impulse", "description": "test profile", "config": {}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profile_id = body["data"]["id"].as_str().unwrap().to_string();
    assert!(profile_id.starts_with("prof_"));

    // A table with camelCase config keys referencing the profile by connectionProfileId.
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables"))
            .json(&json!({
                "name": "rest_ticks",
                "connector": "impulse",
                "connectionProfileId": profile_id,
                "config": { "type": "source", "eventRate": 100000, "messageCount": 7 }
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let table_id = body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["schema"]["fields"][0]["name"], "counter");

    // Queryable in SQL by its name, listed by SHOW TABLES.
    let result = pg
        .simple_query("SELECT count(*) FROM rest_ticks")
        .await
        .unwrap();
    assert_eq!(rows(&result), vec![vec!["7".to_string()]]);

    // A table and a profile created in SQL are listed by REST.
    pg.batch_execute(
        "CREATE TABLE sql_sink (counter BIGINT, note TEXT) WITH (connector = 'blackhole', type = 'sink');
         CREATE CONNECTION PROFILE sqlprof WITH (connector = 'nexmark');",
    )
    .await
    .unwrap();
    let (status, body) = send(http.get(url(&server, "/v1/connection_tables?type=sink"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["data"][0]["name"], "sql_sink");
    assert_eq!(body["data"][0]["schema"]["fields"][1]["data_type"], "TEXT");
    let (_, body) = send(http.get(url(&server, "/api/v1/connection_profiles"))).await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gen", "sqlprof"]);

    // Product-page field shapes: fields[].type.primitive and schema.format {json: {}}.
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables"))
            .json(&json!({
                "name": "console",
                "connector": "stdout",
                "config": { "type": "sink" },
                "schema": {
                    "format": { "json": {} },
                    "fields": [
                        { "name": "order_id", "type": { "primitive": "Int64" } },
                        { "name": "amount", "type": { "primitive": "Float64" } },
                        { "name": "ts", "type": { "primitive": "Timestamp" } }
                    ]
                }
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let describe = pg.simple_query("DESCRIBE console").await.unwrap();
    assert_eq!(
        rows(&describe),
        vec![
            vec!["order_id".to_string(), "BIGINT".into(), "YES".into()],
            vec!["amount".to_string(), "DOUBLE".into(), "YES".into()],
            vec!["ts".to_string(), "TIMESTAMP".into(), "YES".into()],
        ]
    );

    // 409: deleting a profile a table uses.
    let (status, body) = send(http.delete(url(
        &server,
        &format!("/v1/connection_profiles/{profile_id}"),
    )))
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "CONFLICT");

    // 404 for unknown ids, in the error envelope.
    let (status, body) = send(http.get(url(&server, "/v1/connection_tables/tbl_nope"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tbl_nope")
    );

    // Delete in dependency order.
    let (status, _) =
        send(http.delete(url(&server, &format!("/v1/connection_tables/{table_id}")))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(http.delete(url(
        &server,
        &format!("/v1/connection_profiles/{profile_id}"),
    )))
    .await;
    assert_eq!(status, StatusCode::OK);
    let err = pg
        .simple_query("SELECT * FROM rest_ticks")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_config_gets_400_with_the_option_path() {
    let dir = DataDir::new("rest-errors");
    let server = start_in(&dir, None).await;
    let http = Client::new();
    let post = |body: Value| http.post(url(&server, "/v1/connection_tables")).json(&body);

    let (status, body) = send(post(
        json!({"name": "t", "connector": "impulse", "config": {"eventRate": "fast"}}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["path"], "config.event_rate");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected a number")
    );

    let (status, body) = send(post(
        json!({"name": "t", "connector": "impulse", "config": {"eventRate": 1, "messageCont": 3}}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["path"], "config.message_cont");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean 'message_count'")
    );

    let (status, body) = send(post(json!({"name": "t", "connector": "kafkaesque"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains(
        "available connectors: blackhole, datagen, filesystem, impulse, kafka, nexmark, stdout"
    ));

    let (status, body) = send(post(json!({"connector": "impulse"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["path"], "name");

    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables"))
            .header("content-type", "application/json")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    // Duplicate names: 409.
    let ok = json!({"name": "t", "connector": "impulse", "config": {"event_rate": 5}});
    assert_eq!(send(post(ok.clone())).await.0, StatusCode::OK);
    let (status, body) = send(post(ok)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Test endpoints validate and sample without storing anything.
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables/test"))
            .json(&json!({
                "name": "probe", "connector": "impulse", "config": {"eventRate": 1000000}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["sample_data"][0]["counter"], 0);
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables/schemas/test"))
            .json(&json!({
                "connector": "nexmark", "config": {"eventRate": 1000000}
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields = body["data"]["inferred_schema"]["fields"]
        .as_array()
        .unwrap();
    assert_eq!(
        fields
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["event_type", "person", "auction", "bid", "datetime"]
    );
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_profiles/test"))
            .json(&json!({"connector": "impulse", "config": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], true);
    let (_, body) = send(http.get(url(&server, "/v1/connection_tables"))).await;
    assert_eq!(body["meta"]["total"], 1);

    // Connectors carry the JSON Schema of their configs.
    let (_, body) = send(http.get(url(&server, "/v1/connectors"))).await;
    let impulse = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "impulse")
        .unwrap();
    assert!(impulse["configuration_schema"]["table"]["properties"]["event_rate"].is_object());
    assert_eq!(
        impulse["configuration_schema"]["table"]["required"],
        json!(["event_rate"])
    );

    let (status, body) = send(http.get(url(&server, "/v1/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["paths"]["/v1/connection_tables"]["post"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_protects_everything_but_ping_and_connectors() {
    let dir = DataDir::new("rest-auth");
    let server = start_in(&dir, Some("s3cret")).await;
    let http = Client::new();
    let (status, body) = send(http.get(url(&server, "/v1/connection_tables"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (status, _) = send(
        http.get(url(&server, "/api/v1/pipelines"))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        http.get(url(&server, "/v1/connection_tables"))
            .bearer_auth("s3cret"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        send(http.get(url(&server, "/v1/ping"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(http.get(url(&server, "/api/v1/connectors"))).await.0,
        StatusCode::OK
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pipelines_and_jobs() {
    let dir = DataDir::new("rest-pipelines");
    let server = start_in(&dir, None).await;
    let http = Client::new();
    let pg = connect(&server).await;
    pg.batch_execute(
        "CREATE TABLE src WITH (connector = 'impulse', event_rate = '1000');
         CREATE TABLE sink (counter BIGINT) WITH (connector = 'blackhole', type = 'sink');",
    )
    .await
    .unwrap();

    let (status, body) = send(http.post(url(&server, "/v1/pipelines")).json(&json!({
        "name": "copy", "query": "INSERT INTO sink SELECT counter FROM src", "parallelism": 1
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["state"], "Running");

    let (status, body) = send(http.post(url(&server, "/v1/pipelines")).json(&json!({
        "name": "bad", "query": "INSERT INTO src SELECT counter FROM src"
    })))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["sqlstate"], "42809");

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, body) = send(http.get(url(&server, &format!("/v1/pipelines/{id}")))).await;
    let job_id = body["job_id"].as_str().unwrap().to_string();
    assert!(
        body["metrics"]["records_out"].as_u64().unwrap() > 0,
        "{body}"
    );

    let (_, body) = send(http.get(url(&server, "/v1/jobs"))).await;
    assert_eq!(body["data"][0]["id"], job_id.as_str());
    assert_eq!(body["data"][0]["state"], "Running");
    let (_, body) = send(http.get(url(&server, &format!("/v1/jobs/{job_id}/metrics")))).await;
    assert!(body["records_in"].as_u64().unwrap() > 0);
    let metrics = http
        .get(url(&server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "laminar_pipeline_running{{pipeline=\"copy\",id=\"{id}\"}} 1"
        )),
        "{metrics}"
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with("laminar_pipeline_records_out_total{pipeline=\"copy\""))
        .unwrap();
    assert!(
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap() > 0,
        "{line}"
    );

    // 409: the pipeline uses the table.
    let (_, tables) = send(http.get(url(&server, "/v1/connection_tables"))).await;
    let src_id = tables["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _) =
        send(http.delete(url(&server, &format!("/v1/connection_tables/{src_id}")))).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = send(
        http.patch(url(&server, &format!("/v1/pipelines/{id}")))
            .json(&json!({"stop": "immediate"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "Stopped");
    let (_, body) = send(http.get(url(&server, &format!("/v1/jobs/{job_id}")))).await;
    assert_eq!(body["state"], "Stopped");

    let (status, body) =
        send(http.post(url(&server, &format!("/v1/pipelines/{id}/restart")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["job_id"], job_id.as_str());
    let (_, body) = send(http.get(url(&server, &format!("/v1/pipelines/{id}/jobs")))).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let (status, _) = send(http.delete(url(&server, &format!("/v1/pipelines/{id}")))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(http.get(url(&server, &format!("/v1/pipelines/{id}")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        send(http.delete(url(&server, &format!("/v1/connection_tables/{src_id}")))).await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn schema_test_infers_fields_with_samples() {
    let dir = DataDir::new("rest-infer");
    let files = dir.0.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(
        files.join("a.json"),
        "{\"order_id\": 7, \"customer\": \"ann\", \"amount\": 9.5}\n{\"order_id\": 8, \"customer\": \"bob\", \"amount\": 1.25}\n",
    )
    .unwrap();
    let server = start_in(&dir, None).await;
    let http = Client::new();
    let (status, body) = send(
        http.post(url(&server, "/v1/connection_tables/schemas/test"))
            .json(&json!({
                "connector": "filesystem",
                "config": { "type": "source", "path": files.to_str().unwrap() },
                "schema": { "format": { "json": {} } }
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields = body["data"]["inferred_schema"]["fields"]
        .as_array()
        .unwrap();
    let summary: Vec<(String, String, Value)> = fields
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().into(),
                f["data_type"].as_str().unwrap().into(),
                f["sample_values"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("order_id".into(), "BIGINT".into(), json!([7, 8])),
            ("customer".into(), "TEXT".into(), json!(["ann", "bob"])),
            ("amount".into(), "DOUBLE".into(), json!([9.5, 1.25])),
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn job_metrics_list_stateful_operators() {
    let dir = DataDir::new("rest-operators");
    let server = start_in(&dir, None).await;
    let http = Client::new();
    let pg = connect(&server).await;
    pg.batch_execute(
        "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '2000');
         CREATE TABLE per_window (w TIMESTAMP, n BIGINT) WITH (connector = 'blackhole', type = 'sink');
         CREATE PIPELINE windows AS INSERT INTO per_window SELECT window.start, n FROM
           (SELECT tumble(INTERVAL '200' MILLISECOND) AS window, count(*) AS n FROM ticks GROUP BY window);",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (_, body) = send(http.get(url(&server, "/v1/jobs"))).await;
    let job_id = body["data"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = send(http.get(url(&server, &format!("/v1/jobs/{job_id}/metrics")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let operators = body["operators"].as_array().unwrap();
    assert_eq!(operators.len(), 1, "{body}");
    assert!(
        operators[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("WindowAggregateExec: tumble(200ms), processing time"),
        "{body}"
    );
    assert!(operators[0]["records_out"].as_u64().unwrap() >= 2, "{body}");
    assert!(operators[0]["state_bytes"].as_u64().is_some(), "{body}");
    server.shutdown().await;
}
