//! `ringsim`: the discrete-event ring simulator.
//!
//! ```text
//! ringsim run   [options] [--json FILE] [--svg DIR]   one run, JSON report
//! ringsim sweep --sizes 100,1000,... [options] [--extra RUN.json]... --out DIR   hops and cost vs N
//! ringsim relay --sizes 25,50,...    [options] --out DIR   relay vs overlay latency
//! options: --nodes N --seed S --join-rate R --settle S --steady S --blocked P --loss P
//!          --churn FRAC --churn-period S --graceful SHARE --mass-leave AT:FRAC
//!          --lookups R --puts R --gets R --sample S --latency-matrix FILE
//!          --shortcut-factor F | --shortcuts N --relay-select latency|age
//!          --wire (messages through the codec: real byte counts) --trace N,M|all
//! ```
//! JSON goes to the file or stdout and is byte-identical for a given seed; wall time
//! and peak memory go to stderr.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use brunet_compat::ring::{RelaySelect, ShortcutCount};
use brunet_compat::sim::svg::{Series, line_chart};
use brunet_compat::sim::{Latency, Report, Sim, SimConfig, net::parse_matrix};

struct Args {
    cmd: String,
    cfg: SimConfig,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    out: Option<PathBuf>,
    sizes: Vec<usize>,
    extra: Vec<PathBuf>,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut it = argv.iter();
    let cmd = it
        .next()
        .cloned()
        .ok_or("usage: ringsim run|sweep|relay [options]")?;
    let mut a = Args {
        cmd,
        cfg: SimConfig::default(),
        json: None,
        svg: None,
        out: None,
        sizes: Vec::new(),
        extra: Vec::new(),
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().cloned().ok_or(format!("{k} needs a value"));
        let f = |s: String| s.parse::<f64>().map_err(|e| format!("{k}: {e}"));
        match k.as_str() {
            "--nodes" => a.cfg.nodes = v()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--seed" => a.cfg.seed = v()?.parse().map_err(|e| format!("{k}: {e}"))?,
            "--join-rate" => a.cfg.join_rate = f(v()?)?,
            "--settle" => a.cfg.settle_s = f(v()?)?,
            "--steady" => a.cfg.steady_s = f(v()?)?,
            "--blocked" => a.cfg.blocked = f(v()?)?,
            "--loss" => a.cfg.loss = f(v()?)?,
            "--churn" => a.cfg.churn_frac = f(v()?)?,
            "--churn-period" => a.cfg.churn_period_s = f(v()?)?,
            "--graceful" => a.cfg.graceful_share = f(v()?)?,
            "--lookups" => a.cfg.lookups_per_s = f(v()?)?,
            "--puts" => a.cfg.dht_puts_per_s = f(v()?)?,
            "--gets" => a.cfg.dht_gets_per_s = f(v()?)?,
            "--sample" => a.cfg.sample_s = f(v()?)?,
            "--mass-leave" => {
                let s = v()?;
                let (at, frac) = s.split_once(':').ok_or("--mass-leave AT:FRAC")?;
                a.cfg.mass_leave = Some((f(at.into())?, f(frac.into())?));
            }
            "--latency-matrix" => {
                let text = fs::read_to_string(v()?).map_err(|e| e.to_string())?;
                a.cfg.latency = Latency::Matrix(parse_matrix(&text)?);
            }
            "--shortcut-factor" => a.cfg.shortcuts = ShortcutCount::Log2 { factor: f(v()?)? },
            "--shortcuts" => {
                a.cfg.shortcuts =
                    ShortcutCount::Fixed(v()?.parse().map_err(|e| format!("{k}: {e}"))?)
            }
            "--relay-select" => {
                a.cfg.relay_select = match v()?.as_str() {
                    "latency" => RelaySelect::Latency,
                    "age" => RelaySelect::Age,
                    o => return Err(format!("unknown relay selection {o}")),
                }
            }
            "--wire" => a.cfg.wire = true,
            "--trace" => {
                a.cfg.trace = v()?
                    .split(',')
                    .map(|s| match s {
                        "all" => Ok(u32::MAX),
                        s => s.parse().map_err(|e| format!("--trace: {e}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--json" => a.json = Some(v()?.into()),
            "--svg" => a.svg = Some(v()?.into()),
            "--out" => a.out = Some(v()?.into()),
            "--extra" => a.extra.push(v()?.into()),
            "--sizes" => {
                a.sizes = v()?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--sizes: {e}")))
                    .collect::<Result<_, _>>()?
            }
            o => return Err(format!("unknown option {o}")),
        }
    }
    Ok(a)
}

fn peak_rss_mb() -> f64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run_one(cfg: SimConfig) -> (Report, Sim) {
    let mut sim = Sim::new(cfg);
    sim.run();
    // run() always finishes with a report.
    let r = sim.report().cloned().expect("report after run");
    (r, sim)
}

// Wall time is measured by the binary only; the library never reads a clock.
#[allow(clippy::disallowed_methods)]
fn cmd_run(a: Args) -> Result<(), String> {
    let wall = std::time::Instant::now();
    let (r, sim) = run_one(a.cfg);
    if std::env::var_os("RINGSIM_DIAG").is_some() {
        sim.diagnose(5);
    }
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())? + "\n";
    match &a.json {
        Some(p) => write(p, &json)?,
        None => print!("{json}"),
    }
    if let Some(dir) = &a.svg {
        let series = |f: fn(&brunet_compat::sim::metrics::SamplePoint) -> f64, name: &str| Series {
            name: name.into(),
            points: r.series.iter().map(|s| (s.t, f(s))).collect(),
            dashed: false,
        };
        let svg = line_chart(
            &format!("Ring of {} nodes over time (seed {})", r.nodes, r.seed),
            "simulated seconds",
            "share",
            &[
                series(|s| s.consistent, "consistent"),
                series(|s| s.connected, "IsConnected"),
                series(|s| s.lookup_success, "lookup success"),
            ],
            false,
        );
        write(&dir.join(format!("run-{}-consistency.svg", r.nodes)), &svg)?;
    }
    eprintln!(
        "wall {:.1} s, peak RSS {:.0} MB, {} events",
        wall.elapsed().as_secs_f64(),
        peak_rss_mb(),
        r.events
    );
    Ok(())
}

#[allow(clippy::disallowed_methods)]
fn cmd_sweep(a: Args) -> Result<(), String> {
    let out = a.out.clone().unwrap_or_else(|| "sweep".into());
    let mut rows = Vec::new();
    for &n in &a.sizes {
        let wall = std::time::Instant::now();
        let cfg = SimConfig {
            nodes: n,
            ..a.cfg.clone()
        };
        let (r, _) = run_one(cfg);
        eprintln!(
            "N={n}: hops {:.2} (p99 {}), target {:.2}, lookups {:.4}, consistent {:.4}, wall {:.1} s, RSS {:.0} MB",
            r.hops_mean,
            r.hops_p99,
            r.hops_target,
            r.lookup_success,
            r.consistent_end,
            wall.elapsed().as_secs_f64(),
            peak_rss_mb()
        );
        rows.push(serde_json::to_value(&r).map_err(|e| e.to_string())?);
    }
    // Reports of separate `run`s (say the 10^5-node one) join the table and plots.
    for path in &a.extra {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        rows.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    rows.sort_by(|x, y| x["nodes"].as_u64().cmp(&y["nodes"].as_u64()));
    const KEYS: [&str; 16] = [
        "nodes",
        "hops_mean",
        "hops_p99",
        "hops_target",
        "lookup_success",
        "dht_get_success",
        "consistent_end",
        "consistent_steady_min",
        "time_to_consistent_s",
        "maintenance_per_node_s",
        "msgs_per_node_s",
        "memory_per_peer",
        "peers_mean",
        "shortcuts_mean",
        "steady_s",
        "events",
    ];
    let summary: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            KEYS.iter()
                .map(|k| (k.to_string(), r[*k].clone()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    write(
        &out.join("sweep.json"),
        &(serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n"),
    )?;
    let pts = |k: &str| {
        rows.iter()
            .map(|r| {
                (
                    r["nodes"].as_f64().unwrap_or(0.0),
                    r[k].as_f64().unwrap_or(0.0),
                )
            })
            .collect::<Vec<_>>()
    };
    let hops = line_chart(
        "Greedy lookup hops vs N",
        "nodes (log scale)",
        "hops",
        &[
            Series {
                name: "mean".into(),
                points: pts("hops_mean"),
                dashed: false,
            },
            Series {
                name: "p99".into(),
                points: pts("hops_p99"),
                dashed: false,
            },
            Series {
                name: "0.5·log2 N + 1".into(),
                points: pts("hops_target"),
                dashed: true,
            },
        ],
        true,
    );
    write(&out.join("hops-vs-n.svg"), &hops)?;
    let cost = line_chart(
        "Maintenance messages per node per second",
        "nodes (log scale)",
        "msgs / node / s",
        &[Series {
            name: "maintenance".into(),
            points: pts("maintenance_per_node_s"),
            dashed: false,
        }],
        true,
    );
    write(&out.join("maintenance-vs-n.svg"), &cost)?;
    let mem = line_chart(
        "Core memory per known peer",
        "nodes (log scale)",
        "bytes",
        &[Series {
            name: "bytes / peer".into(),
            points: pts("memory_per_peer"),
            dashed: false,
        }],
        true,
    );
    write(&out.join("memory-vs-n.svg"), &mem)?;
    Ok(())
}

fn cmd_relay(a: Args) -> Result<(), String> {
    let out = a.out.clone().unwrap_or_else(|| "relay".into());
    let mut rows = Vec::new();
    for &n in &a.sizes {
        let cfg = SimConfig {
            nodes: n,
            lookups_per_s: 0.0,
            dht_puts_per_s: 0.0,
            dht_gets_per_s: 0.0,
            ..a.cfg.clone()
        };
        let (_, mut sim) = run_one(cfg);
        let (direct, relay, overlay) = sim.relay_experiment(2000);
        let better = if overlay > 0.0 {
            1.0 - relay / overlay
        } else {
            0.0
        };
        eprintln!(
            "N={n}: direct {direct:.1} ms, relay {relay:.1} ms, overlay {overlay:.1} ms, relay better by {:.0}%",
            better * 100.0
        );
        rows.push(serde_json::json!({
            "nodes": n, "direct_ms": direct, "relay_ms": relay, "overlay_ms": overlay,
            "relay_better_than_overlay": (better * 1e4).round() / 1e4,
        }));
    }
    write(
        &out.join("relay.json"),
        &(serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())? + "\n"),
    )?;
    let col = |k: &str| {
        rows.iter()
            .map(|r| {
                (
                    r["nodes"].as_f64().unwrap_or(0.0),
                    r[k].as_f64().unwrap_or(0.0),
                )
            })
            .collect::<Vec<_>>()
    };
    let svg = line_chart(
        "Two-hop relay vs overlay routing latency",
        "nodes (log scale)",
        "one-way latency, ms",
        &[
            Series {
                name: "direct".into(),
                points: col("direct_ms"),
                dashed: true,
            },
            Series {
                name: "two-hop relay".into(),
                points: col("relay_ms"),
                dashed: false,
            },
            Series {
                name: "overlay (greedy)".into(),
                points: col("overlay_ms"),
                dashed: false,
            },
        ],
        true,
    );
    write(&out.join("relay-vs-overlay.svg"), &svg)?;
    Ok(())
}

/// The simulator touches a few hundred MB at random: with 4 KiB pages most of its time
/// goes to TLB misses. glibc's malloc backs its heap with transparent huge pages when
/// asked through `GLIBC_TUNABLES`, which is read at start-up only, so ringsim re-executes
/// itself once with it set (same process, so `/usr/bin/time` still measures the run).
/// Set `GLIBC_TUNABLES` yourself (even empty) to opt out.
fn use_huge_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")
        .exec();
    // Only reached when exec failed: carry on with normal pages.
    eprintln!("ringsim: could not re-execute with huge pages: {err}");
}

fn main() -> ExitCode {
    use_huge_pages();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let res = parse(&argv).and_then(|a| match a.cmd.as_str() {
        "run" => cmd_run(a),
        "sweep" => cmd_sweep(a),
        "relay" => cmd_relay(a),
        o => Err(format!("unknown command {o}; use run, sweep or relay")),
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringsim: {e}");
            ExitCode::FAILURE
        }
    }
}
