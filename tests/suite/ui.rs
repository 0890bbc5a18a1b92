//! The dashboard over HTTP (SPEC §13): every page and JSON answer shows
//! what the sandbox and the database hold, in the CLI's JSON shapes; the
//! token on a non-loopback address; nothing secret in any answer.

use crate::daemon;

use daemon::{Daemon, PATIENCE, Setup, eventually, free_port, hash_of, sandbox};
use keywarden::sandbox::Sandbox;
use std::process::Stdio;
use std::time::Duration;
use tokio::net::UnixDatagram;

/// The header value a budget source sends, which no answer may hold.
const SOURCE_SECRET: &str = "Bearer finance-header-value-81f3";

/// The path of the webhook's URL, which no answer may hold.
const WEBHOOK_PATH: &str = "/hooks/T0-webhook-path-secret-5c2e";

/// Rules: `cap` disables team keys over 10 USD this month; `finance`
/// reads its budget from a source that is down, with a secret header.
fn rules(dead_port: u16) -> String {
    format!(
        r#"[[rule]]
name = "cap"
keys = {{ names = ["team-*"] }}
schedule = "*/1 * * * * *"
[rule.when]
budget = {{ usd = 10.0, window = "monthly" }}
[rule.set]
disabled = true

[[rule]]
name = "finance"
keys = {{ names = ["nobody"] }}
schedule = "*/1 * * * * *"
[rule.when]
budget = {{ usd = {{ url = "http://127.0.0.1:{dead_port}/budgets", pointer = "/usd", headers = {{ Authorization = "env:FINANCE_TOKEN" }} }}, window = "monthly" }}
[rule.set]
disabled = true
"#
    )
}

/// The service with the dashboard on `port`, its guard holding every
/// change (one allowed per run, two wanted), a webhook and a budget source
/// that are down.
struct Served {
    sandbox: Sandbox,
    setup: Setup,
    _service: Daemon,
    base: String,
}

async fn served() -> Served {
    let sandbox = sandbox(None).await;
    let port = free_port();
    let dead = free_port();
    let setup = Setup::new(
        &rules(dead),
        &format!(
            "[ui]\nlisten = \"127.0.0.1:{port}\"\n\n[[notify]]\nurl = \"http://127.0.0.1:{dead}{WEBHOOK_PATH}\"\n"
        ),
    );
    let config = std::fs::read_to_string(&setup.config).unwrap();
    let config = config.replacen("[daemon]\n", "[daemon]\nmax_changes_per_run = 1\n", 1);
    std::fs::write(&setup.config, &config).unwrap();
    // Over budget on both keys: two changes, one allowed, so both are held.
    for name in ["team-a-01", "team-b-01"] {
        let hash = hash_of(&sandbox, name);
        sandbox.account().spend(&hash, 12.0, false).unwrap();
    }
    serve(sandbox, setup, port, &[("FINANCE_TOKEN", SOURCE_SECRET)]).await
}

/// Starts `keywarden run` of `setup` over `sandbox`, with `env`, its
/// dashboard on `port`; returns once it is ready.
async fn serve(sandbox: Sandbox, setup: Setup, port: u16, env: &[(&str, &str)]) -> Served {
    let socket_path = setup.dir.path().join("ui.sock");
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    let mut command = setup.command(&sandbox, Some(&socket_path));
    command.envs(env.iter().copied());
    let service = Daemon::wrap(command.spawn().unwrap(), Some(notify));
    service.wait_for("READY=1", PATIENCE).await;
    let base = format!("http://127.0.0.1:{port}");
    Served {
        sandbox,
        setup,
        _service: service,
        base,
    }
}

/// `GET url` → (status, body).
async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `GET url` as JSON, asserting 200.
async fn json(url: &str) -> serde_json::Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// Waits until `/api/status` satisfies `ready`.
async fn status_when(base: &str, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let status = json(&format!("{base}/api/status")).await;
        if ready(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never ready: {status:#}\n{}",
            get(&format!("{base}/history")).await.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Member names of the first object of a JSON array.
fn members(array: &serde_json::Value) -> Vec<String> {
    let first = array
        .as_array()
        .and_then(|a| a.first())
        .expect("a non-empty array");
    first.as_object().unwrap().keys().cloned().collect()
}

/// The CLI's `--format json` output of `args`.
async fn cli_json(s: &Served, args: &[&str]) -> serde_json::Value {
    let out = s.setup.cli(&s.sandbox, args).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const PAGES: [&str; 5] = ["/", "/budgets", "/keys", "/history", "/rules"];
const ANSWERS: [&str; 6] = [
    "/api/status",
    "/api/keys",
    "/api/budgets",
    "/api/forecasts",
    "/api/history",
    "/api/rules",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_page_and_answer_shows_what_the_sandbox_and_the_database_hold() {
    let s = served().await;
    let base = &s.base;
    let status = status_when(base, |st| {
        st["held_changes"].as_array().is_some_and(|h| !h.is_empty())
            && !st["outages"].as_array().is_some_and(|o| o.is_empty())
            && st["keys"]["total"] == 2
            // The account observed after a run, not only at the start.
            && st["observed_at"].as_str() >= st["last_run"]["started_at"].as_str()
    })
    .await;
    assert_eq!(status["role"], "leader");
    let outages: Vec<&str> = status["outages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(outages.contains(&"budget_source"), "{outages:?}");

    let (code, overview) = get(&format!("{base}/")).await;
    assert_eq!(code, 200);
    for text in [
        "Overview",
        "leader",
        "Changes held by the guard",
        "held",
        "team-a-01",
        "budget source",
        "url:http://127.0.0.1:",
    ] {
        assert!(
            overview.contains(text),
            "the Overview lacks {text:?}:\n{overview}"
        );
    }
    let (_, budgets) = get(&format!("{base}/budgets")).await;
    for text in [
        "cap",
        "team-a-01",
        "team-b-01",
        "12.00 of 10.00",
        "crossed",
        "<meter",
        "<svg",
    ] {
        assert!(
            budgets.contains(text),
            "the Budgets page lacks {text:?}:\n{budgets}"
        );
    }
    let (_, keys) = get(&format!("{base}/keys")).await;
    assert!(
        keys.contains("team-a-01") && keys.contains("team-b-01"),
        "{keys}"
    );
    let (_, only_a) = get(&format!("{base}/keys?name=team-a-*")).await;
    assert!(
        only_a.contains("team-a-01") && !only_a.contains("team-b-01"),
        "{only_a}"
    );
    let (_, history) = get(&format!("{base}/history?outcome=held&rule=cap")).await;
    assert!(
        history.contains("team-a-01") && history.contains("held"),
        "{history}"
    );
    let (code, bad) = get(&format!("{base}/history?kind=sideways")).await;
    assert_eq!((code, bad.trim()), (400, "kind: `sideways` is unknown"));
    let (_, rules) = get(&format!("{base}/rules")).await;
    assert!(rules.contains("cap") && rules.contains("budget"), "{rules}");

    // The JSON is the CLI's.
    assert_eq!(
        json(&format!("{base}/api/rules")).await,
        cli_json(&s, &["rules", "list", "--format", "json"]).await
    );
    let api_keys = json(&format!("{base}/api/keys")).await;
    let cli_keys = cli_json(&s, &["keys", "list", "--format", "json"]).await;
    assert_eq!(members(&api_keys), members(&cli_keys));
    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().into())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&api_keys), ["team-a-01", "team-b-01"]);
    assert_eq!(names(&api_keys), names(&cli_keys));
    // The rule filter keeps the keys that rule's selector matches.
    let by_rule = |rule: &str| format!("{base}/api/keys?rule={rule}");
    assert_eq!(
        names(&json(&by_rule("cap")).await),
        ["team-a-01", "team-b-01"]
    );
    assert!(names(&json(&by_rule("finance")).await).is_empty());
    let api_history = json(&format!("{base}/api/history?outcome=held")).await;
    let cli_history = cli_json(&s, &["history", "--outcome", "held", "--format", "json"]).await;
    assert_eq!(members(&api_history), members(&cli_history));
    // `/api/forecasts` is `forecast --format json`, its rows a page at a
    // time: here one page, the CLI's rows (drawn at the CLI's own instant,
    // so the figures that depend on it aside).
    let forecasts = json(&format!("{base}/api/forecasts")).await;
    let cli_forecasts = cli_json(&s, &["forecast", "--format", "json"]).await;
    assert_eq!(
        forecasts.as_object().unwrap().keys().collect::<Vec<_>>(),
        cli_forecasts
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        members(&forecasts["forecasts"]),
        members(&cli_forecasts["forecasts"])
    );
    assert_eq!(
        drawn_anytime(&forecasts["forecasts"]),
        drawn_anytime(&cli_forecasts["forecasts"])
    );
    let budget_rows = json(&format!("{base}/api/budgets")).await;
    let cli_budget_rows: Vec<serde_json::Value> = cli_forecasts["forecasts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["budget_usd"].is_null())
        .cloned()
        .collect();
    assert!(!cli_budget_rows.is_empty() && cli_budget_rows.iter().all(|r| r["rule"] == "cap"));
    assert_eq!(
        drawn_anytime(&budget_rows),
        drawn_anytime(&serde_json::Value::Array(cli_budget_rows))
    );
}

/// Forecast rows without the figures that depend on the instant they are
/// drawn at (the burn rate, and the projection and crossing drawn from it).
fn drawn_anytime(rows: &serde_json::Value) -> Vec<serde_json::Value> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            let fields = row.as_object_mut().unwrap();
            for instant in ["rate_usd_per_hour", "projected_usd", "crossing_at"] {
                fields.remove(instant).expect("a forecast row's member");
            }
            row
        })
        .collect()
}

/// `GET url` → (its `Link` header, its body as JSON), asserting 200.
async fn json_page(url: &str) -> (Option<String>, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let link = r
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_string());
    (link, r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn forecasts_and_budgets_come_500_rows_a_page_as_forecast_prints_them() {
    // One row per key: 600 keys, two pages.
    let sandbox = crate::common::sandbox_with_keys(600).await;
    let port = free_port();
    let setup = Setup::new(
        r#"[[rule]]
name = "each-monthly"
keys = { names = ["*"] }
schedule = "0 0 1 1 *"
[rule.when]
budget = { usd = 1000.0, window = "monthly", scope = "each" }
[rule.set]
disabled = true
"#,
        &format!("[ui]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let s = serve(sandbox, setup, port, &[]).await;
    let base = &s.base;
    status_when(base, |st| st["keys"]["total"] == 600).await;
    let cli = cli_json(&s, &["forecast", "--format", "json"]).await;
    let cli_rows = &cli["forecasts"];
    assert_eq!(cli_rows.as_array().unwrap().len(), 600);

    let (next, first) = json_page(&format!("{base}/api/forecasts")).await;
    assert_eq!(
        next.as_deref(),
        Some("</api/forecasts?page=2>; rel=\"next\"")
    );
    let (next, second) = json_page(&format!("{base}/api/forecasts?page=2")).await;
    assert_eq!(next, None, "the last page");
    let (_, past) = json_page(&format!("{base}/api/forecasts?page=3")).await;
    assert_eq!(past["forecasts"], serde_json::json!([]));
    let (first, second) = (&first["forecasts"], &second["forecasts"]);
    assert_eq!(first.as_array().unwrap().len(), 500);
    assert_eq!(
        [drawn_anytime(first), drawn_anytime(second)].concat(),
        drawn_anytime(cli_rows),
        "the pages are the CLI's rows, in its order"
    );

    let (next, budgets) = json_page(&format!("{base}/api/budgets")).await;
    assert_eq!(next.as_deref(), Some("</api/budgets?page=2>; rel=\"next\""));
    assert_eq!(drawn_anytime(&budgets), drawn_anytime(first));
    let (next, budgets) = json_page(&format!("{base}/api/budgets?page=2")).await;
    assert_eq!(
        (next, drawn_anytime(&budgets)),
        (None, drawn_anytime(second))
    );

    let name = |row: &serde_json::Value| format!("<td>{}</td>", row["key_name"].as_str().unwrap());
    let (_, page_1) = get(&format!("{base}/budgets")).await;
    let (_, page_2) = get(&format!("{base}/budgets?page=2")).await;
    assert!(page_1.contains("href=\"/budgets?page=2\""), "{page_1}");
    assert!(page_2.contains("href=\"/budgets?page=1\""), "{page_2}");
    assert!(page_1.contains(&name(&first[0])) && !page_1.contains(&name(&second[0])));
    assert!(page_2.contains(&name(&second[99])) && !page_2.contains(&name(&first[0])));
}

/// The sandbox's `GET /keys` requests, and the runs started, while
/// `keywarden run` with `extra` configuration ran 4 runs (a rule due every
/// second) and stopped.
async fn listings_over_runs(extra: &str) -> (usize, usize) {
    let sandbox = sandbox(None).await;
    let setup = Setup::new(
        r#"[[rule]]
name = "cap"
keys = { names = ["team-*"] }
schedule = "*/1 * * * * *"
[rule.when]
budget = { usd = 1000.0, window = "monthly" }
[rule.set]
disabled = true
"#,
        extra,
    );
    let mut service = Daemon::start(&setup, &sandbox, "listings");
    service.wait_for("READY=1", PATIENCE).await;
    let runs = || service.stderr().matches("run finished").count();
    assert!(
        eventually(PATIENCE, || runs() >= 4).await,
        "{}",
        service.stderr()
    );
    service.signal("TERM");
    assert!(service.exit(PATIENCE).await.success());
    let started = service.stderr().matches("run starting").count();
    let listings = sandbox
        .account()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/keys"))
        .count();
    (listings, started)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_what_each_run_listed_without_listing_the_keys_again() {
    let (alone, runs_alone) = listings_over_runs("").await;
    assert!(
        runs_alone >= 4 && alone % runs_alone == 0,
        "{alone} listings, {runs_alone} runs"
    );
    let per_run = alone / runs_alone;
    let port = free_port();
    let (served, runs) =
        listings_over_runs(&format!("[ui]\nlisten = \"127.0.0.1:{port}\"\n")).await;
    assert_eq!(
        served,
        runs * per_run,
        "{runs} runs, {per_run} GET /keys a run: none for the dashboard"
    );
}

/// The cells of the Keys page's row of the key named `name`, as text.
fn row_of(page: &str, name: &str) -> Vec<String> {
    let row = page
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{name}</td>")))
        .unwrap_or_else(|| panic!("no row of {name}:\n{page}"));
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    row.split("</td>")
        .filter(|cell| cell.contains("<td"))
        .map(text_of)
        .collect()
}

/// `html` without its tags.
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// The cells of `keys list`'s table row of `name`.
fn cli_row_of(table: &str, name: &str) -> Vec<String> {
    let line = table
        .lines()
        .find(|l| {
            l.trim_start_matches('│')
                .trim()
                .starts_with(&format!("{name} "))
        })
        .unwrap_or_else(|| panic!("no row of {name}:\n{table}"));
    line.trim_matches('│')
        .split('┆')
        .map(|c| c.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keys_page_shows_each_keys_workspace_guardrail_and_forecast_as_keys_list_does() {
    // `--keys 6`: default, research and support in turn; team-b-01 holds
    // cheap-models-only, support-01 no-training (see seed::spread_over_workspaces).
    let sandbox = crate::common::sandbox_with_keys(6).await;
    let port = free_port();
    // `downgrade` puts ci-01 on no-training (so the guardrails are read);
    // `cap` disables team-b-01, 12 USD over its 10.
    let setup = Setup::new(
        r#"[[rule]]
name = "downgrade"
keys = { names = ["ci-*"] }
schedule = "*/1 * * * * *"
[rule.set]
guardrail = "no-training"

[[rule]]
name = "cap"
keys = { names = ["team-*"] }
schedule = "*/1 * * * * *"
[rule.when]
budget = { usd = 10.0, window = "monthly" }
[rule.set]
disabled = true
"#,
        &format!("[ui]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let hash = hash_of(&sandbox, "team-b-01");
    sandbox.account().spend(&hash, 12.0, false).unwrap();
    let s = serve(sandbox, setup, port, &[]).await;
    let base = &s.base;
    status_when(base, |st| {
        st["keys"]["disabled"] == 1
            && st["observed_at"].as_str() >= st["last_run"]["started_at"].as_str()
    })
    .await;
    let (_, keys) = get(&format!("{base}/keys")).await;
    for header in ["workspace", "guardrail", "USD/h", "forecast"] {
        assert!(keys.contains(&format!("<th>{header}</th>")), "{keys}");
    }
    let team_b = row_of(&keys, "team-b-01");
    assert_eq!(
        team_b[2..4],
        ["research", "cheap-models-only"],
        "{team_b:?}"
    );
    assert_eq!(team_b[11..13], ["?", "over 10.00 (cap)"], "{team_b:?}");
    assert_eq!(
        row_of(&keys, "support-01")[2..4],
        ["default", "no-training"]
    );
    assert_eq!(row_of(&keys, "team-c-01")[2..4], ["support", "-"]);
    let ci = row_of(&keys, "ci-01");
    assert_eq!(ci[3], "no-training", "{ci:?}");
    assert_eq!(ci[11..13], ["", ""], "no budget rule covers ci-01: {ci:?}");

    // The same workspace and forecast as `keys list`.
    let out = s.setup.cli(&s.sandbox, &["keys", "list"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let cli = cli_row_of(&table, "team-b-01");
    assert_eq!(cli[2], team_b[2], "{table}");
    assert_eq!(cli[cli.len() - 2..], team_b[11..13], "{table}");

    // The workspace filter takes a slug or an id.
    let (_, research) = get(&format!("{base}/keys?workspace=research")).await;
    assert!(
        research.contains("team-b-01") && research.contains("ci-01"),
        "{research}"
    );
    assert!(!research.contains("team-a-01"), "{research}");
    let api = json(&format!("{base}/api/keys?workspace=research")).await;
    let id = api[0]["workspace_id"].as_str().unwrap().to_string();
    let by_id = json(&format!("{base}/api/keys?workspace={id}")).await;
    assert_eq!(by_id, api);
    assert_eq!(api.as_array().unwrap().len(), 2, "{api}");
    // 500 keys a page: the second is empty.
    let page_2 = json(&format!("{base}/api/keys?workspace=research&page=2")).await;
    assert_eq!(page_2, serde_json::json!([]));
    assert!(
        api.as_array()
            .unwrap()
            .iter()
            .all(|k| k["keywarden"]["workspace"] == "research"),
        "{api}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answer_holds_the_management_key_a_source_header_or_a_webhook_path() {
    let s = served().await;
    let base = &s.base;
    status_when(base, |st| {
        st["outages"].as_array().is_some_and(|o| !o.is_empty())
            && st["held_changes"].as_array().is_some_and(|h| !h.is_empty())
    })
    .await;
    let key = s.sandbox.management_key().to_string();
    let paths =
        PAGES
            .iter()
            .chain(&ANSWERS)
            .chain(&["/assets/style.css", "/assets/live.js", "/login"]);
    for path in paths {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = format!("{:?}", r.headers());
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.starts_with("default-src 'self'; script-src 'self'"),
            "{path}: {csp}"
        );
        let body = r.text().await.unwrap();
        for secret in [
            key.as_str(),
            SOURCE_SECRET,
            "finance-header-value",
            WEBHOOK_PATH,
            "T0-webhook",
        ] {
            assert!(
                !body.contains(secret) && !headers.contains(secret),
                "{path} holds {secret:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_get_is_served() {
    let s = served().await;
    let client = reqwest::Client::new();
    for path in PAGES.iter().chain(&ANSWERS) {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = client
                .request(method.clone(), format!("{}{path}", s.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
        }
    }
}

/// `keywarden ui` with `args` and `env`, on the test's database.
fn ui_command(
    setup: &Setup,
    sandbox: &Sandbox,
    args: &[&str],
    token: Option<&str>,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keywarden"));
    cmd.arg("--config")
        .arg(&setup.config)
        .arg("--database")
        .arg(&setup.database)
        .arg("ui")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYWARDEN_BASE_URL", sandbox.base_url())
        .env("OPENROUTER_MANAGEMENT_KEY", sandbox.management_key())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(token) = token {
        cmd.env("KEYWARDEN_UI_TOKEN", token);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_address_without_a_token_is_a_configuration_error() {
    let sandbox = sandbox(None).await;
    let setup = Setup::new("", "[ui]\nlisten = \"0.0.0.0:9718\"\n");
    let out = setup.cli(&sandbox, &["check-config"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[ui].listen \"0.0.0.0:9718\" is not a loopback address and no dashboard token is configured: set KEYWARDEN_UI_TOKEN"),
        "{stderr}"
    );
    let plain = Setup::new("", "");
    let out = ui_command(&plain, &sandbox, &["--listen", "0.0.0.0:0"], None)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"0.0.0.0:0\" is not a loopback address"),
        "{stderr}"
    );
    assert!(
        !plain.database.exists(),
        "nothing is created on a configuration error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_required_off_loopback_by_bearer_or_login_cookie() {
    let sandbox = sandbox(None).await;
    let setup = Setup::new("", "");
    let port = free_port();
    let token = "dashboard-token-4b1d";
    let child = ui_command(
        &setup,
        &sandbox,
        &["--listen", &format!("0.0.0.0:{port}")],
        Some(token),
    )
    .spawn()
    .unwrap();
    let _ui = Daemon::wrap(child, None);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert!(
        eventually(PATIENCE, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok())
        .await
    );
    let up = async |path: &str, bearer: Option<&str>| {
        let mut req = client.get(format!("{base}{path}"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    // The keys are observed once the dashboard has listed them.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !up("/api/keys", Some(token)).await.1.contains("team-a-01") {
        assert!(
            std::time::Instant::now() < deadline,
            "the keys never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in PAGES.iter().chain(&ANSWERS) {
        for bearer in [None, Some("wrong"), Some("dashboard-token-4b1")] {
            let (code, body) = up(path, bearer).await;
            assert_eq!(code, 401, "{path} with {bearer:?}");
            assert!(
                !body.contains("team-a-01") && !body.contains(token),
                "{path}: {body}"
            );
        }
        assert_eq!(up(path, Some(token)).await.0, 200, "{path}");
    }
    let login = |given: &str| {
        client
            .post(format!("{base}/login"))
            .form(&[("token", given)])
            .send()
    };
    assert_eq!(login("wrong").await.unwrap().status(), 401);
    let r = login(token).await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let page = client
        .get(format!("{base}/keys"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("team-a-01"));
}

#[test]
fn tokens_are_compared_in_constant_time_by_construction() {
    // The comparison is subtle's ConstantTimeEq over SHA-256 digests of
    // equal length, never `==` on the strings: read it from the source.
    let source = include_str!("../../src/ui/auth.rs");
    let body = source
        .split("pub fn token_matches")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("token_matches in src/ui/auth.rs");
    assert!(
        body.contains("Sha256::digest") && body.contains(".ct_eq("),
        "{body}"
    );
    assert!(!body.contains("=="), "{body}");
    assert!(source.contains("use subtle::ConstantTimeEq;"));
}
