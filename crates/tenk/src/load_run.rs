//! `tenk load`: runs a load spec (or a `--find-max-rate` search) and
//! prints its report.

use std::process::ExitCode;

use anyhow::Context as _;
use load::spec::TlsClient;
use load::Workload;
use reactor::signal;
use reactor::sys::rlimit;

use crate::load_cli::Load;
use crate::usage_error;

pub(crate) fn run_load(command: Load, signals: signal::SignalSet) -> anyhow::Result<ExitCode> {
    let (spec, common, max_rate, tls) = match &command {
        Load::Echo(args) => {
            let target = match load::target::resolve(&args.target) {
                Ok(addr) => addr,
                Err(e) => return Ok(usage_error(&e)),
            };
            let host = load::target::host(&args.target);
            let tls = match args.tls.client_config(args.tls_on, host, &[]) {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let workload = Workload::Echo {
                size: args.size as usize,
            };
            let label = format!("echo {}", args.target);
            let spec = args.common.spec(target, label, workload);
            (spec, &args.common, Some(&args.max_rate), tls)
        }
        Load::Http(args) => {
            let target = match load::target::http_target(&args.url) {
                Ok(target) => target,
                Err(e) => return Ok(usage_error(&e)),
            };
            let tls = match args
                .tls
                .client_config(target.tls, &target.name, &[b"http/1.1"])
            {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let request = http::client::build_request(
                &args.method,
                &target.host,
                &target.path,
                &args.headers,
                args.body.as_bytes(),
            );
            let workload = Workload::Http {
                request,
                method: args.method.clone(),
            };
            let label = format!("http {}", args.url);
            let spec = args.common.spec(target.addr, label, workload);
            (spec, &args.common, Some(&args.max_rate), tls)
        }
        Load::Chat(args) => {
            let mut nodes = Vec::new();
            for node in args.target.split(',') {
                match load::target::resolve(node.trim()) {
                    Ok(addr) => nodes.push(addr),
                    Err(e) => return Ok(usage_error(&e)),
                }
            }
            let (target, spread) = (nodes[0], nodes.split_off(1));
            let host = load::target::host(args.target.split(',').next().unwrap_or(""));
            let tls = match args.tls.client_config(args.tls_on, host, &[]) {
                Ok(tls) => (tls, args.tls.new_conn_per_request),
                Err(e) => return Ok(usage_error(&e)),
            };
            let workload = Workload::Chat {
                rooms: args.rooms,
                senders: args.senders,
            };
            let label = format!("chat {}", args.target);
            let mut spec = args.common.spec(target, label, workload);
            spec.spread = spread;
            spec.rate = Some(spec.rate.unwrap_or(crate::load_cli::CHAT_DEFAULT_RATE));
            (spec, &args.common, None, tls)
        }
    };
    let mut spec = spec;
    let (tls, new_conn_per_request) = tls;
    spec.tls = tls.map(|(config, server_name)| TlsClient {
        config,
        server_name,
    });
    spec.new_conn_per_request = new_conn_per_request;
    if let Err(e) = spec.validate() {
        return Ok(usage_error(&e));
    }
    let search = match max_rate.map(|m| m.search(common)).transpose() {
        Ok(search) => search.flatten(),
        Err(e) => return Ok(usage_error(&e)),
    };
    rlimit::raise_nofile_limit();
    if let Some(search) = search {
        return run_find_max_rate(&spec, &search, common.json, signals);
    }
    let report = load::run(spec, Some(signals), print_progress).context("load run failed")?;
    if common.json {
        outln!("{}", report.to_json());
    } else {
        outln!("{}", report.to_human());
    }
    Ok(if report.faults() > common.max_errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `[  3s] 123456 req/s | 100/100 open | errors 0`, on stderr so that
/// stdout stays the report (and `--json` stays parseable).
fn print_progress(p: &load::Progress) {
    errln!(
        "[{:>4.0}s] {:.0} {}/s | {}/{} open | errors {}",
        p.elapsed.as_secs_f64(),
        p.rate,
        p.unit,
        p.open,
        p.connections,
        p.errors
    );
}

/// `--find-max-rate`: each step on stderr as it ends (with progress), the
/// table or JSON on stdout; exit 1 when no step passed.
fn run_find_max_rate(
    spec: &load::LoadSpec,
    search: &load::Search,
    json: bool,
    signals: signal::SignalSet,
) -> anyhow::Result<ExitCode> {
    let progress = spec.progress;
    let found = load::find_max_rate(
        spec,
        search,
        Some(signals),
        |step| {
            if progress {
                errln!(
                    "step {:.0} req/s: achieved {:.0}, p99 {:.0} µs, errors {} -> {}",
                    step.target_rate,
                    step.achieved_rate,
                    step.p99_us,
                    step.errors,
                    step.failed_on.unwrap_or("pass")
                );
            }
        },
        print_progress,
    )
    .context("load run failed")?;
    if json {
        outln!("{}", found.to_json());
    } else {
        outln!("{}", found.to_human());
    }
    Ok(if found.max_rate > 0.0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
