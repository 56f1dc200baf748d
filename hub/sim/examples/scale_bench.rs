//! Size benchmark: N Deployments × R replicas through the real kube client, then list and
//! watch latencies. `cargo run --release -p scalehub-sim --example scale_bench -- 10000 5`

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use scalehub_sim::SimOptions;
use serde_json::json;

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {"scalehub.io/enabled": "true", "sim.scalehub.io/load": "constant:500m"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    }))
    .expect("valid deployment")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let replicas: i32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let sim = scalehub_sim::start(SimOptions {
        pod_ready_delay: Duration::from_millis(500),
        history_limit: 100_000,
        ..Default::default()
    })
    .await?;
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig_yaml())?;
    let client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::all(client.clone());

    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &deployment(&format!("w{i}"), replicas)).await }
        })
        .buffer_unordered(32)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    println!("created {n} deployments over HTTP in {:?}", t.elapsed());

    let want = n * replicas as usize;
    let t = Instant::now();
    loop {
        let ready = sim
            .store()
            .list(scalehub_sim::resources::PODS, None, &Default::default(), None, None)?
            .items
            .iter()
            .filter(|p| scalehub_sim::meta::pod_ready(p))
            .count();
        if ready >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{want} pods Running and Ready {:?} after the last create (ready delay 500ms)", t.elapsed());

    for _ in 0..2 {
        let t = Instant::now();
        let list = api.list(&ListParams::default()).await?;
        println!("list {} deployments: {:?}", list.items.len(), t.elapsed());
    }
    let t = Instant::now();
    let list = pods.list(&ListParams::default()).await?;
    println!("list {} pods (all namespaces): {:?}", list.items.len(), t.elapsed());
    let t = Instant::now();
    let list = pods.list(&ListParams::default().labels("app=w42")).await?;
    println!("list pods with labelSelector app=w42 ({} items): {:?}", list.items.len(), t.elapsed());
    let t = Instant::now();
    let req = http::Request::get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dw42")
        .body(Vec::new())?;
    let m: serde_json::Value = client.request(req).await?;
    println!("PodMetrics for one workload ({} items): {:?}", m["items"].as_array().map_or(0, Vec::len), t.elapsed());
    let t = Instant::now();
    let mut count = 0;
    let mut pages = 0;
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await?;
        count += page.items.len();
        pages += 1;
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    println!("paged list of {count} deployments in {pages} pages of 500: {:?}", t.elapsed());

    let t = Instant::now();
    let mut w = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut init = 0;
    loop {
        match w.try_next().await? {
            Some(watcher::Event::InitApply(_)) => init += 1,
            Some(watcher::Event::InitDone) => break,
            _ => {}
        }
    }
    println!("watcher initial sync of {init} deployments: {:?}", t.elapsed());
    let mut applied = w.applied_objects().boxed();
    let mut samples = Vec::new();
    for i in 0..20 {
        let name = format!("w{}", i * (n / 20).max(1));
        let t = Instant::now();
        api.patch_scale(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas + 1 + i as i32 % 2}})),
        )
        .await?;
        loop {
            let d = applied.try_next().await?.ok_or("watch ended")?;
            if d.metadata.name.as_deref() == Some(name.as_str()) {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "scale patch → watch event latency: median {:?}, max {:?}",
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
    println!("requests: {}", sim.accounting().snapshot()["byVerb"]);
    sim.shutdown().await;
    Ok(())
}
