//! Benchmark: create N servers with bounded concurrency against a real OpenStack, wait until
//! all are ACTIVE, delete them, wait until all are gone; print the times and the API calls
//! the client made (counted by the client itself).
//!
//! ```text
//! bash tests/openstack/bench.sh              # starts the loopback stack, raises the quota, runs this
//! AUTOSCALER_TEST_STACK=/var/tmp/autoscaler-openstack \
//!   cargo run -p autoscaler --example openstack_create -- 50 10
//! ```
//!
//! Credentials: the application credential in `$AUTOSCALER_TEST_STACK/run/appcred.env`.
//! The project's instances quota must allow N more servers of flavor `m1.tiny`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use autoscaler_core::ports::{
    Cloud, CloudStatus, ControllerId, CreateServer, ServerId, ServerTemplateSpec,
};
use autoscaler_openstack::{AuthSettings, ClientOptions, OpenStack, resolve_auth};
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(50), |a| a.parse()).context("COUNT")?;
    let concurrency: usize = args
        .next()
        .map_or(Ok(10), |a| a.parse())
        .context("CONCURRENCY")?;
    let stack = std::env::var("AUTOSCALER_TEST_STACK").context("AUTOSCALER_TEST_STACK")?;
    let env_file = format!("{stack}/run/appcred.env");
    let text = std::fs::read_to_string(&env_file).with_context(|| env_file.clone())?;
    let env: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let auth = resolve_auth(&AuthSettings::default(), &env)?;
    let controller = ControllerId::new(format!("bench-{}", std::process::id()))?;
    let cloud = OpenStack::new(auth, controller, ClientOptions::default())?;
    cloud.authenticate().await?;

    let template = ServerTemplateSpec {
        flavor: "m1.tiny".into(),
        image: "fake-image".into(),
        networks: vec!["runner-net".into()],
        security_groups: vec!["runner-sg".into()],
        key_name: Some("k1".into()),
        ..ServerTemplateSpec::default()
    };
    let before = cloud.stats();
    let gate = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (cloud, gate, template) = (cloud.clone(), gate.clone(), template.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let req = CreateServer {
                name: format!("bench-{i:03}"),
                pool: "bench".into(),
                runner_id: Some(i as u64),
                template,
                user_data: SecretString::from("#cloud-config\n"),
                metadata: Default::default(),
            };
            anyhow::Ok(cloud.create_server(req).await?)
        });
    }
    let mut ids: Vec<ServerId> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r??);
    }
    let accepted = start.elapsed();
    let created_stats = cloud.stats();

    let mut polls = 0;
    let errors = loop {
        polls += 1;
        let servers = cloud.list_owned_servers().await?;
        let errors = servers
            .iter()
            .filter(|s| matches!(s.status, CloudStatus::Error { .. }))
            .count();
        let active = servers
            .iter()
            .filter(|s| s.status == CloudStatus::Active)
            .count();
        if active + errors == count {
            break errors;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("only {active} of {count} ACTIVE after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let all_active = start.elapsed();

    let del_start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in ids {
        let (cloud, gate) = (cloud.clone(), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            anyhow::Ok(cloud.delete_server(&id).await?)
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let delete_accepted = del_start.elapsed();
    loop {
        polls += 1;
        if cloud.list_owned_servers().await?.is_empty() {
            break;
        }
        if del_start.elapsed() > Duration::from_secs(600) {
            bail!("servers still listed 600 s after delete");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_deleted = del_start.elapsed();
    let after = cloud.stats();

    let per = |op: &str, s: &autoscaler_openstack::ApiStats| {
        s.requests.get(op).copied().unwrap_or(0) - before.requests.get(op).copied().unwrap_or(0)
    };
    println!("servers: {count}, concurrency: {concurrency}, ERROR at the end of boot: {errors}");
    println!(
        "creates accepted (202) after {:.1} s",
        accepted.as_secs_f64()
    );
    println!(
        "all ACTIVE after            {:.1} s",
        all_active.as_secs_f64()
    );
    println!(
        "deletes accepted after      {:.1} s",
        delete_accepted.as_secs_f64()
    );
    println!(
        "all gone after              {:.1} s (from the first delete)",
        all_deleted.as_secs_f64()
    );
    let create_calls: u64 = created_stats.total() - before.total();
    println!(
        "API calls while creating: {create_calls} ({:.2} per server: create_server {}, lookups {}, auth {})",
        create_calls as f64 / count as f64,
        per("create_server", &created_stats),
        created_stats
            .requests
            .iter()
            .filter(|(k, _)| k.starts_with("lookup_"))
            .map(|(_, v)| v)
            .sum::<u64>(),
        per("auth", &created_stats),
    );
    println!(
        "API calls per server to delete: {:.2}; status polls (list_servers, shared): {polls}",
        per("delete_server", &after) as f64 / count as f64
    );
    println!(
        "all requests by operation: {:?}; retries {}",
        after.requests, after.retries
    );
    Ok(())
}
