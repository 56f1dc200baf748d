//! The dashboard in headless Chromium against a running simulator and hub: the fleet lists
//! the demo's targets, a target page shows a chart and a decision whose reasons are visible,
//! and an override set through the form is applied to the workload and shows up.
//!
//! Also runs the page's node unit tests (`web-ui/tests/`).
//!
//! Screenshots go to `target/screenshots/`. Without `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` the test is skipped with a printed reason (but fails under CI,
//! where `scripts/test.sh` installs them).

mod driver;
mod fleet;

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use serde_json::json;

use driver::Browser;
use fleet::{AUTHOR, Fleet, TOKEN};

const DEMO_TARGETS: [&str; 8] = [
    "shop/Deployment/web",
    "shop/Deployment/catalog",
    "shop/Deployment/flaky",
    "batch/Deployment/nightly",
    "shop/Deployment/checkout",
    "shop/Deployment/search",
    "shop/Deployment/typo",
    "batch/StatefulSet/queue-workers",
];

/// The page's pure rules (badges, reasons, number and time formats) under node's test runner.
#[test]
fn badge_and_format_rules_pass_their_node_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web-ui");
    let out = match std::process::Command::new("node").arg("--test").arg("tests/").current_dir(&dir).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED web-ui node tests: node is not available ({e})");
            return;
        }
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node --test web-ui/tests/ failed:\n{text}");
    assert!(text.contains("# fail 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_lists_explains_and_overrides_the_demo_targets() {
    if let Some(why) = driver::missing() {
        if std::env::var_os("CI").is_some() {
            panic!("browser test cannot run in CI: {why}");
        }
        eprintln!("SKIPPED dashboard browser test: {why}");
        return;
    }
    let fleet = Fleet::start().await;
    let browser = Browser::start().await;
    // Close the browser and the hub even when a step fails, then report the failure.
    let outcome = AssertUnwindSafe(async {
        the_fleet_lists_the_demo_targets(&browser, &fleet).await;
        a_predictive_target_charts_its_prediction(&browser, &fleet).await;
        scale_to_zero_and_fallback_explain_themselves(&browser, &fleet).await;
        a_target_page_shows_a_chart_and_the_reasons_of_a_decision(&browser).await;
        an_override_set_through_the_form_is_applied_and_shows_up(&browser, &fleet).await;
        the_fleet_pages_through_thousands_of_targets(&browser, &fleet).await;
        let errors = browser.page_errors().await;
        assert!(errors.is_empty(), "the page reported errors: {errors:?}");
    })
    .catch_unwind()
    .await;
    browser.close().await;
    fleet.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_protects_reads_asks_for_a_token_once_and_then_shows_one_fleet() {
    if let Some(why) = driver::missing() {
        if std::env::var_os("CI").is_some() {
            panic!("browser test cannot run in CI: {why}");
        }
        eprintln!("SKIPPED dashboard browser test: {why}");
        return;
    }
    let fleet = Fleet::start_with("\n  protectReads: true\n").await;
    let browser = Browser::start().await;
    let outcome = AssertUnwindSafe(async {
        browser.client.goto(&format!("{}/", fleet.url)).await.unwrap();
        // A 401 is a hub that answered: it asks for a token, it is not "unreachable".
        browser
            .until(
                "the hub summary to ask for a token",
                10,
                "return document.getElementById('hub-summary').textContent.includes('token needed')",
            )
            .await;
        browser.element("#read-token", 10).await.send_keys(TOKEN).await.unwrap();
        browser.click(".token-gate button[type=submit]", 5).await;
        browser.element("#fleet-search", 10).await;
        browser
            .until(
                "the hub summary after the token",
                10,
                "return document.getElementById('hub-summary').textContent.includes('Leader')",
            )
            .await;
        // The view that hit the 401 was torn down: one fleet listens to the stream, not two.
        let listeners = browser.js("return window.__scalehub.stream.listeners.size").await;
        assert_eq!(listeners, json!(1), "the fleet view rendered again without tearing down the old one");
        assert_eq!(browser.js("return document.querySelectorAll('#fleet-search').length").await, json!(1));
        let errors = browser.page_errors().await;
        assert!(errors.is_empty(), "the page reported errors: {errors:?}");
    })
    .catch_unwind()
    .await;
    browser.close().await;
    fleet.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn the_fleet_lists_the_demo_targets(browser: &Browser, fleet: &Fleet) {
    let all_listed =
        format!("return {}.every(k => document.querySelector(`a.trow[data-key=\"${{k}}\"]`))", json!(DEMO_TARGETS));
    // Targets appear as the hub's first ticks record them; the page picks up new ones from
    // the stream, and a reload now and then covers a hub that has not sent them yet.
    let mut listed = false;
    for _ in 0..8 {
        browser.client.goto(&format!("{}/", fleet.url)).await.unwrap();
        browser.element("#fleet-search", 15).await;
        if browser.try_until(15, &all_listed).await {
            listed = true;
            break;
        }
    }
    if !listed {
        browser.shot("failure").await;
        panic!("the fleet never listed all of {DEMO_TARGETS:?}");
    }
    let badge = |key: &str, badge: &str| {
        format!("return !!document.querySelector('a.trow[data-key=\"{key}\"] [data-badge=\"{badge}\"]')")
    };
    browser.until("typo's invalid badge", 30, &badge("shop/Deployment/typo", "invalid")).await;
    browser.until("queue-workers' shadow badge", 30, &badge("batch/StatefulSet/queue-workers", "shadow")).await;
    browser
        .until(
            "web's sparkline",
            45,
            "return !!document.querySelector('a.trow[data-key=\"shop/Deployment/web\"] svg.spark')",
        )
        .await;
    browser
        .until("the hub summary", 10, "return document.getElementById('hub-summary').textContent.includes('Leader')")
        .await;
    browser.shot("fleet").await;
    // The rows' sparklines come from one batched call, never one request per row.
    let requests = browser
        .js("const names = performance.getEntriesByType('resource').map(e => new URL(e.name).pathname);\
             return [names.filter(p => p.endsWith('/decisions')).length, names.filter(p => p === '/api/v1/replicas').length]")
        .await;
    let per_row = requests[0].as_u64().unwrap();
    let batched = requests[1].as_u64().unwrap();
    assert_eq!(per_row, 0, "the fleet fetched decisions per row");
    assert!(batched >= 1, "no batched replicas call: {requests}");

    // Search narrows the list on the server.
    browser.element("#fleet-search", 5).await.send_keys("checko").await.unwrap();
    browser
        .until(
            "the search to leave only checkout",
            15,
            "const rows = [...document.querySelectorAll('a.trow')];\
             return rows.length === 1 && rows[0].dataset.key === 'shop/Deployment/checkout'",
        )
        .await;
    browser.js("[...document.querySelectorAll('.toolbar button')].find(b => b.textContent === 'Clear').click()").await;
    browser.until("the full list again", 15, &all_listed).await;
}

async fn a_predictive_target_charts_its_prediction(browser: &Browser, fleet: &Fleet) {
    browser.client.goto(&format!("{}/targets/shop/Deployment/catalog", fleet.url)).await.unwrap();
    browser.element("#replica-chart canvas", 20).await;
    browser
        .until(
            "the Prediction series in the chart's legend",
            20,
            "return [...document.querySelectorAll('#replica-chart .u-legend .u-label')].some(l => l.textContent === 'Prediction')",
        )
        .await;
    // The demo's catalog load rises within its first minute: the line model predicts above the
    // evaluation, and the decision says so.
    browser
        .until(
            "a decision the predictions changed",
            90,
            "return !!document.querySelector('#decisions tr.drow[data-codes*=\"Predicted\"]')",
        )
        .await;
    browser.click("#decisions tr.drow[data-codes*=\"Predicted\"]", 5).await;
    let chain = browser.text(".decision-detail .chain").await;
    assert!(chain.contains("trend predicts"), "the predict step's reason: {chain}");
    browser.shot("target-predictive").await;
    a_what_if_replay_is_drawn_beside_what_happened(browser).await;
    // Back to the fleet, as the next step starts from there.
    browser.client.goto(&format!("{}/", fleet.url)).await.unwrap();
    browser.element("a.trow[data-key=\"shop/Deployment/web\"]", 20).await;
}

/// The demo's nightly target goes to zero after its cooldown; flaky falls back to 3 replicas.
async fn scale_to_zero_and_fallback_explain_themselves(browser: &Browser, fleet: &Fleet) {
    let badge =
        "return !!document.querySelector('a.trow[data-key=\"shop/Deployment/flaky\"] [data-badge=\"fallback\"]')";
    browser.until("flaky's fallback badge", 45, badge).await;
    browser.client.goto(&format!("{}/targets/batch/Deployment/nightly", fleet.url)).await.unwrap();
    browser.element("#decisions", 20).await;
    // 2 → 1 as the evaluation falls to 0 (never straight to 0), then 0 once 10 s have passed.
    browser
        .until(
            "nightly's decision to zero",
            60,
            "return !!document.querySelector('#decisions tr.drow[data-codes*=\"ScaledToZero\"]')",
        )
        .await;
    let codes =
        browser.js("return [...document.querySelectorAll('#decisions tr.drow')].map(r => r.dataset.codes)").await;
    let codes = codes.to_string();
    assert!(codes.contains("Inactive"), "the way down to 1 says why: {codes}");
    browser.click("#decisions tr.drow[data-codes*=\"ScaledToZero\"]", 5).await;
    let chain = browser.text(".decision-detail .chain").await;
    assert!(chain.contains("the whole cooldown") && chain.contains("1 → 0"), "the last step's reason: {chain}");
    browser.shot("target-zero").await;
    browser.client.goto(&format!("{}/", fleet.url)).await.unwrap();
    browser.element("a.trow[data-key=\"shop/Deployment/web\"]", 20).await;
}

/// On the catalog page: a replay with a shorter down window and a one-pod rate policy.
async fn a_what_if_replay_is_drawn_beside_what_happened(browser: &Browser) {
    let down = browser.element("#wi-downscaleStabilization", 10).await;
    down.clear().await.unwrap();
    down.send_keys("0s").await.unwrap();
    let behavior = browser.element("#wi-behavior", 5).await;
    behavior
        .send_keys(r#"{"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}}"#)
        .await
        .unwrap();
    browser.click("#whatif-run", 5).await;
    browser.until("the replay's summary", 30, "return !!document.querySelector('#whatif-summary tbody tr')").await;
    let summary = browser.text("#whatif-summary").await;
    assert!(summary.contains("What if") && summary.contains("Replica-hours"), "summary: {summary}");
    // The candidate climbs one pod per 15 s where catalog rose 4 at a time: fewer replica-hours
    // or as many, never more scale-ups in one step; the curve is drawn (the chart redraws).
    let rows =
        browser.js("return [...document.querySelectorAll('#whatif-summary tbody tr')].map(r => r.textContent)").await;
    assert_eq!(rows.as_array().map(Vec::len), Some(6), "{rows}");
    let replayed = browser
        .js("return window.__scalehub && window.__scalehub.lastReplay ? window.__scalehub.lastReplay.ticks.length : -1")
        .await;
    assert!(replayed.as_i64().is_some_and(|n| n > 0), "the replay reached the chart: {replayed}");
    browser.js("document.getElementById('whatif-summary').scrollIntoView({block: 'center'})").await;
    browser.shot("target-whatif").await;
    // Another profile's built-in calculation over catalog's recorded CPU: the demo's plain
    // `cpu` profile, without catalog's models.
    browser.js("window.__scalehub.lastReplay = null").await;
    browser.element("#wi-calculation", 5).await.send_keys("cpu").await.unwrap();
    browser.click("#whatif-run", 5).await;
    browser.until("the calculation's replay", 30, "return !!(window.__scalehub && window.__scalehub.lastReplay)").await;
    let calculation = browser.js("return window.__scalehub.lastReplay.calculation").await;
    assert_eq!(calculation[0]["key"], "cpu", "the replay ran the cpu profile's calculation: {calculation}");
    assert!(browser.text("#whatif-result").await.contains("Replica-hours"), "the summary is shown");
}

async fn a_target_page_shows_a_chart_and_the_reasons_of_a_decision(browser: &Browser) {
    // Navigate the way a reader does: click the row.
    browser.click("a.trow[data-key=\"shop/Deployment/web\"]", 10).await;
    browser.until("the target page", 15, "return location.pathname === '/targets/shop/Deployment/web'").await;
    browser.element("#replica-chart canvas", 20).await;
    browser.element("#decisions tr.drow", 30).await;
    assert_eq!(browser.text("#target-name").await, "web");
    // The demo's web workload scales up under rate limits, so decisions with reasons come quickly.
    browser
        .until(
            "a decision with reasons",
            90,
            "return !!document.querySelector('#decisions tr.drow:not([data-codes=\"\"])')",
        )
        .await;
    browser.click("#decisions tr.drow:not([data-codes=\"\"])", 5).await;
    browser.element(".decision-detail .chain li[data-code]", 10).await;
    let text = browser.text(".decision-detail .chain li[data-code]").await;
    assert!(!text.trim().is_empty(), "the reason has no text");
    let chain = browser.text(".decision-detail .chain").await;
    assert!(chain.contains("The evaluation asked for"), "reason chain: {chain}");
    browser.js("document.querySelector('.decision-detail').scrollIntoView({block: 'center'})").await;
    browser.shot("target-decision").await;
    // The CPA's dry-run evaluation from the page: recorded, nothing scaled. It runs hooks, so
    // it needs the write token, typed into the override form.
    browser.element("#ov-token", 5).await.send_keys(TOKEN).await.unwrap();
    browser.click("#dry-run", 5).await;
    browser
        .until(
            "the dry run in the history",
            30,
            "return !!document.querySelector('#decisions tr.drow[data-outcome=\"dry_run\"]')",
        )
        .await;
    browser.js("window.scrollTo(0, 0)").await;
    browser.shot("target").await;
}

async fn an_override_set_through_the_form_is_applied_and_shows_up(browser: &Browser, fleet: &Fleet) {
    let current = fleet.deployment_replicas("web").await.unwrap_or(2);
    // A value inside web's bounds (2–12) that differs from what it has, so applying it shows.
    let pin = if current == 3 { 4 } else { 3 };
    let replicas = browser.element("#ov-replicas", 10).await;
    replicas.clear().await.unwrap();
    replicas.send_keys(&pin.to_string()).await.unwrap();
    browser.element("#ov-reason", 5).await.send_keys("browser test: hold web steady").await.unwrap();
    let token = browser.element("#ov-token", 5).await;
    token.clear().await.unwrap();
    token.send_keys(TOKEN).await.unwrap();
    browser.click("#set-override", 5).await;

    let shown = format!(
        "const el = document.querySelector('[data-testid=active-override]');\
         return el && el.textContent.includes('Pinned at {pin}') && el.textContent.includes('{AUTHOR}')"
    );
    browser.until("the active override in the panel", 20, &shown).await;
    // Applied: the hub scaled the simulated Deployment to the pinned value.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while fleet.deployment_replicas("web").await != Some(pin) {
        if tokio::time::Instant::now() > deadline {
            browser.shot("failure").await;
            panic!("the hub never scaled shop/web to the pinned {pin}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    browser
        .until(
            "the pin in the decision history",
            45,
            "return !!document.querySelector('#decisions tr.drow[data-codes~=\"OverridePinned\"]')",
        )
        .await;
    browser
        .until(
            "the override_set record",
            30,
            "return !!document.querySelector('#decisions tr.drow[data-outcome=\"override_set\"]')",
        )
        .await;
    browser
        .until(
            "the overridden badge",
            30,
            "return !!document.querySelector('#target-badges [data-badge=\"overridden\"]')",
        )
        .await;
    browser
        .until(
            "current replicas on the page",
            45,
            &format!("return document.getElementById('stat-current').textContent === '{pin}'"),
        )
        .await;
    browser.shot("override").await;

    // The token is kept for the session, so clearing needs no second entry.
    browser.click("#clear-override", 5).await;
    browser
        .until("the override to be gone", 20, "return !document.querySelector('[data-testid=active-override]')")
        .await;
}

async fn the_fleet_pages_through_thousands_of_targets(browser: &Browser, fleet: &Fleet) {
    const BULK: usize = 2500;
    fleet.add_bulk_targets(BULK).await;
    let total = BULK + DEMO_TARGETS.len();
    browser.client.goto(&format!("{}/", fleet.url)).await.unwrap();
    browser.element("a.trow", 15).await;
    // The scroll area is sized for the whole fleet from the first page's counts.
    browser
        .until(
            "the fleet size in the title",
            15,
            &format!("return document.querySelector('.fleet-head .sub').textContent.replace(/\\D/g, '') === '{total}'"),
        )
        .await;
    let rendered = browser.js("return document.querySelectorAll('a.trow').length").await;
    assert!(rendered.as_u64().unwrap_or(0) < 100, "only the visible rows are in the page, not {rendered}");
    // Jump to the end: the pages in between load through the cursor, and the last target
    // in key order (shop/Deployment/web) turns up at the bottom.
    let started = std::time::Instant::now();
    browser
        .until(
            "the last row after scrolling to the end",
            60,
            "const s = document.querySelector('.table-scroll'); s.scrollTop = s.scrollHeight;\
             return !!document.querySelector('a.trow[data-key=\"shop/Deployment/web\"]')",
        )
        .await;
    // A figure, not a timed assertion (the wait above bounds it): headless Chromium on a loaded
    // two-core machine pages at very different speeds from run to run.
    eprintln!("paging to the end of {total} targets took {:?}", started.elapsed());
    let rows = browser.js("return document.querySelectorAll('a.trow').length").await;
    assert!(rows.as_u64().unwrap_or(0) < 100, "rows are recycled while scrolling, found {rows}");
    browser.shot("fleet-scrolled").await;
    // The server filters: a search finds one bulk target among thousands.
    browser.client.goto(&format!("{}/?q=svc-01234", fleet.url)).await.unwrap();
    browser
        .until(
            "the search result",
            15,
            "const rows = [...document.querySelectorAll('a.trow')];\
             return rows.length === 1 && rows[0].dataset.key === 'bulk-4/Deployment/svc-01234'",
        )
        .await;
}
