//! The driver: runs every scenario for every library, alternating between
//! them, and prints the tables (Markdown) on stdout; progress on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{rotate, Args, Res};

const OURS: &str = "ours";
const RM: &str = "rusqlite_migration";
const REFINERY: &str = "refinery";

/// Every value and every ratio measured for one (group, variant).
#[derive(Default)]
struct Sample {
    values: Vec<f64>,
    ratios: Vec<f64>,
}

#[derive(Default)]
struct Store {
    samples: BTreeMap<(String, String), Sample>,
    infos: BTreeMap<String, String>,
}

impl Store {
    fn get(&self, group: &str, variant: &str) -> Option<&Sample> {
        self.samples.get(&(group.to_owned(), variant.to_owned()))
    }
    fn entry(&mut self, group: &str, variant: &str) -> &mut Sample {
        self.samples
            .entry((group.to_owned(), variant.to_owned()))
            .or_default()
    }
    /// Median of the per-pair ratios of a (group, variant).
    fn ratio(&self, group: &str, variant: &str) -> Option<f64> {
        self.get(group, variant).and_then(|s| median(&s.ratios))
    }
    fn value(&self, group: &str, variant: &str) -> Option<f64> {
        self.get(group, variant).and_then(|s| median(&s.values))
    }
}

fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

struct Bin {
    name: &'static str,
    path: PathBuf,
}

/// Runs one child process and records what it printed. `rename` tells how
/// to name the plain-rusqlite variants of a peer's binary (they run on the
/// peer's rusqlite and SQLite, so they are kept apart from ours).
fn run(store: &mut Store, bin: &Bin, args: &[String]) -> Res<Vec<(String, String, f64)>> {
    let out = Command::new(&bin.path).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}\n{}",
            bin.path.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut values = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.splitn(5, '\t').collect();
        match fields.as_slice() {
            ["S", group, variant, value, ratio] => {
                let mut variant = (*variant).to_owned();
                if variant.starts_with("plain") && bin.name != OURS {
                    variant = format!("{variant} [{} build]", bin.name);
                }
                let value: f64 = value.parse()?;
                let s = store.entry(group, &variant);
                s.values.push(value);
                if *ratio != "-" {
                    s.ratios.push(ratio.parse()?);
                }
                values.push(((*group).to_owned(), variant, value));
            }
            ["I", key, rest @ ..] => {
                store.infos.insert((*key).to_owned(), rest.join("\t"));
            }
            _ => {}
        }
    }
    Ok(values)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn list(text: &str) -> Res<Vec<usize>> {
    text.split(',')
        .map(|s| s.trim().parse::<usize>().map_err(Into::into))
        .collect()
}

/// The sizes of one run.
struct Config {
    check_sizes: Vec<usize>,
    rounds: usize,
    warm_iters: usize,
    fresh_check_iters: usize,
    fresh_n: usize,
    fresh_iters: usize,
    fresh_rounds: usize,
    pending_rounds: usize,
    pending_iters: usize,
    rows: usize,
    child: usize,
    big_rounds: usize,
    addcol_rounds: usize,
    cost_rows: usize,
    only: Vec<String>,
}

impl Config {
    fn from(args: &Args) -> Res<Config> {
        let smoke = args.flag("smoke");
        let pick = |key: &str, full: usize, small: usize| -> Res<usize> {
            args.num_or(key, if smoke { small } else { full })
        };
        let rows = pick("rows", 1_000_000, 2_000)?;
        Ok(Config {
            check_sizes: list(
                args.str_or("check-sizes", if smoke { "5,20" } else { "10,200,2000" }),
            )?,
            rounds: pick("rounds", 7, 2)?,
            warm_iters: pick("warm-iters", 2_000, 50)?,
            fresh_check_iters: pick("fresh-check-iters", 100, 5)?,
            fresh_n: pick("fresh-n", 200, 20)?,
            fresh_iters: pick("fresh-iters", 3, 1)?,
            // Scenario 2 is bound by fsync, whose time swings from run to run
            // (per-migration WAL medians moved by 0.1x between runs of 5
            // rounds): more rounds steady the medians.
            fresh_rounds: pick("fresh-rounds", 15, 1)?,
            pending_rounds: pick("pending-rounds", 3, 1)?,
            pending_iters: pick("pending-iters", 10, 2)?,
            rows,
            child: pick("child", rows / 10, rows / 10)?,
            big_rounds: pick("big-rounds", 5, 1)?,
            // Scenario 5's runs take a millisecond, dominated by one fsync
            // whose time varies from run to run: more rounds, same cost.
            addcol_rounds: pick("addcol-rounds", 21, 1)?,
            cost_rows: pick("cost-rows", 1_500_000, 2_000)?,
            only: args
                .str_or("only", "check,pending,fresh,rebuild,addcol,cascade,cost")
                .split(',')
                .map(str::to_owned)
                .collect(),
        })
    }
    fn runs(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

pub fn drive(args: &Args) -> Res<()> {
    let config = Config::from(args)?;
    let exe = std::env::current_exe()?;
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = match args.str_or("dir", "") {
        "" => target_dir.join("bench-work"),
        d => PathBuf::from(d),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let sibling = |name: &str| -> PathBuf {
        exe.parent()
            .map_or_else(|| PathBuf::from(name), |p| p.join(name))
    };
    let bins = [
        Bin {
            name: OURS,
            path: exe.clone(),
        },
        Bin {
            name: RM,
            path: args
                .path("rusqlite-migration")
                .unwrap_or_else(|_| sibling("bench-rusqlite-migration")),
        },
        Bin {
            name: REFINERY,
            path: args
                .path("refinery")
                .unwrap_or_else(|_| sibling("bench-refinery")),
        },
    ];
    let mut store = Store::default();
    let p = |dir: &Path, name: &str| dir.join(name).display().to_string();

    for bin in &bins {
        run(&mut store, bin, &strings(&["info"]))?;
    }

    // Scenario 1: the up-to-date check.
    if config.runs("check") {
        for &n in &config.check_sizes {
            for bin in &bins {
                eprintln!("check: {} applies {n} migrations", bin.name);
                let db = p(&dir, &format!("check-{}-{n}.db", bin.name));
                run(
                    &mut store,
                    bin,
                    &strings(&["setup-check", "--n", &n.to_string(), "--db", &db]),
                )?;
            }
            for (mode, iters) in [
                ("warm", config.warm_iters),
                ("fresh", config.fresh_check_iters),
            ] {
                for round in 0..config.rounds {
                    eprintln!("check {mode} n={n}: round {}/{}", round + 1, config.rounds);
                    for bin in rotate(&bins.iter().collect::<Vec<_>>(), round) {
                        let db = p(&dir, &format!("check-{}-{n}.db", bin.name));
                        run(
                            &mut store,
                            bin,
                            &strings(&[
                                "check",
                                "--n",
                                &n.to_string(),
                                "--db",
                                &db,
                                "--mode",
                                mode,
                                "--iters",
                                &iters.to_string(),
                            ]),
                        )?;
                    }
                }
            }
        }
    }

    // One pending migration after a long history.
    if config.runs("pending") {
        for &n in &config.check_sizes {
            for round in 0..config.pending_rounds {
                eprintln!(
                    "pending n={n}: round {}/{}",
                    round + 1,
                    config.pending_rounds
                );
                for bin in rotate(&bins.iter().collect::<Vec<_>>(), round) {
                    run(
                        &mut store,
                        bin,
                        &strings(&[
                            "pending",
                            "--n",
                            &n.to_string(),
                            "--dir",
                            &dir.display().to_string(),
                            "--iters",
                            &config.pending_iters.to_string(),
                        ]),
                    )?;
                }
            }
        }
    }

    // Scenario 2: a new database, all migrations.
    if config.runs("fresh") {
        for journal in ["delete", "wal"] {
            for round in 0..config.fresh_rounds {
                eprintln!(
                    "fresh {journal}: round {}/{}",
                    round + 1,
                    config.fresh_rounds
                );
                for bin in rotate(&bins.iter().collect::<Vec<_>>(), round) {
                    run(
                        &mut store,
                        bin,
                        &strings(&[
                            "fresh",
                            "--n",
                            &config.fresh_n.to_string(),
                            "--dir",
                            &dir.display().to_string(),
                            "--journal",
                            journal,
                            "--iters",
                            &config.fresh_iters.to_string(),
                        ]),
                    )?;
                }
            }
        }
    }

    // Scenarios 3, 4, 5: the big database.
    let big_kinds: Vec<&str> = ["rebuild", "addcol"]
        .into_iter()
        .filter(|k| config.runs(k))
        .collect();
    if !big_kinds.is_empty() {
        let rows = config.rows.to_string();
        let child = config.child.to_string();
        // (binary, template variant, template file)
        let templates = [
            (&bins[0], "plain", "tpl-plain.db"),
            (&bins[0], OURS, "tpl-ours.db"),
            (&bins[1], RM, "tpl-rm.db"),
            (&bins[2], REFINERY, "tpl-refinery.db"),
        ];
        for (bin, variant, file) in templates {
            eprintln!("template: {variant} ({} rows)", config.rows);
            run(
                &mut store,
                bin,
                &strings(&[
                    "template",
                    "--rows",
                    &rows,
                    "--child",
                    &child,
                    "--db",
                    &p(&dir, file),
                    "--variant",
                    variant,
                ]),
            )?;
        }
        // (binary, variant, template)
        let variants = [
            (&bins[0], "plain", "tpl-plain.db"),
            (&bins[0], "ours-full", "tpl-ours.db"),
            (&bins[0], "ours-quick", "tpl-ours.db"),
            (&bins[0], "ours-changed", "tpl-ours.db"),
            (&bins[0], "ours-off", "tpl-ours.db"),
            (&bins[0], "ours-changed/fk-off", "tpl-ours.db"),
            (&bins[0], "ours-off/fk-off", "tpl-ours.db"),
            (&bins[0], "plain+check(table)", "tpl-plain.db"),
            (&bins[0], "plain+history+check(table)", "tpl-ours.db"),
            (&bins[0], "plain+fk_check", "tpl-plain.db"),
            (&bins[1], RM, "tpl-rm.db"),
            (&bins[1], "plain", "tpl-plain.db"),
            (&bins[2], REFINERY, "tpl-refinery.db"),
            (&bins[2], "plain", "tpl-plain.db"),
        ];
        for kind in &big_kinds {
            let rounds = if *kind == "addcol" {
                config.addcol_rounds
            } else {
                config.big_rounds
            };
            for round in 0..rounds {
                eprintln!("{kind}: round {}/{rounds}", round + 1);
                let mut times = BTreeMap::new();
                let mut rss = BTreeMap::new();
                for (bin, variant, template) in rotate(&variants, round) {
                    let got = run(
                        &mut store,
                        bin,
                        &strings(&[
                            "big",
                            "--rows",
                            &rows,
                            "--child",
                            &child,
                            "--kind",
                            kind,
                            "--template",
                            &p(&dir, template),
                            "--db",
                            &p(&dir, "big-work.db"),
                            "--variant",
                            variant,
                        ]),
                    )?;
                    for (group, variant, value) in got {
                        if group.ends_with(".time") {
                            times.insert(variant, value);
                        } else {
                            rss.insert(variant, value);
                        }
                    }
                }
                // Ratios to plain rusqlite of the same build in the same round.
                for (variant, t) in &times {
                    let base = plain_of(variant);
                    let (Some(bt), Some(br), Some(r)) =
                        (times.get(&base), rss.get(&base), rss.get(variant))
                    else {
                        continue;
                    };
                    store
                        .entry(&format!("{kind}.time"), variant)
                        .ratios
                        .push(t / bt);
                    let d = (r - br) / MIB;
                    store.entry(&format!("{kind}.rss"), variant).ratios.push(d);
                }
            }
        }
    }

    if config.runs("cascade") {
        eprintln!("cascade");
        for bin in &bins {
            run(&mut store, bin, &strings(&["cascade"]))?;
        }
        run(&mut store, &bins[0], &strings(&["cascade-plain"]))?;
    }

    if config.runs("cost") {
        eprintln!("cost: {} parent rows", config.cost_rows);
        run(
            &mut store,
            &bins[0],
            &strings(&[
                "cost",
                "--rows",
                &config.cost_rows.to_string(),
                "--db",
                &p(&dir, "cost.db"),
            ]),
        )?;
    }

    print!("{}", report(&store, &config));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

/// The plain-rusqlite variant of the same build as `variant`.
fn plain_of(variant: &str) -> String {
    for peer in [RM, REFINERY] {
        if variant == peer || variant.ends_with(&format!("[{peer} build]")) {
            return format!("plain [{peer} build]");
        }
    }
    "plain".to_owned()
}

fn fmt_time(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.3} s", seconds)
    }
}

fn fmt_opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "–".to_owned(), f)
}

fn spread(s: &Sample) -> String {
    match (quantile(&s.values, 0.25), quantile(&s.values, 0.75)) {
        (Some(a), Some(b)) => format!("{} – {}", fmt_time(a), fmt_time(b)),
        _ => "–".to_owned(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn report(store: &Store, config: &Config) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "### SQLite and defaults\n");
    let _ = writeln!(
        o,
        "| runner | SQLite | `PRAGMA foreign_keys` on a new connection |"
    );
    let _ = writeln!(o, "|---|---|---|");
    for lib in [OURS, RM, REFINERY] {
        let _ = writeln!(
            o,
            "| {lib} | {} | {} |",
            store
                .infos
                .get(&format!("sqlite.{lib}"))
                .map_or("?", String::as_str),
            store
                .infos
                .get(&format!("foreign_keys_default.{lib}"))
                .map_or("?", String::as_str)
        );
    }
    let mut targets: Vec<String> = Vec::new();

    if config.runs("check") {
        let _ = writeln!(
            o,
            "\n### 1. Up-to-date check\n\n\
             Warm: the library's migrate call on an open connection; baseline one \
             `PRAGMA user_version` (cached statement). Fresh: open a connection and \
             migrate; baseline open and `SELECT count(*) FROM sqlite_master`. \
             \"× baseline\" is the median of per-call ratios to the baseline call \
             next to it, in the same process; \"vs ours\" divides those ratios. \
             `sketch` is not a library: one cached statement reading `user_version` \
             and the newest history row on our database (what a constant-time check \
             can cost).\n"
        );
        let _ = writeln!(
            o,
            "| mode | N | runner | median | p25 – p75 | × baseline | vs ours |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for mode in ["warm", "fresh"] {
            for &n in &config.check_sizes {
                let group = format!("check.{mode}.{n}");
                let ours = store.ratio(&group, OURS);
                for lib in [OURS, RM, REFINERY, "sketch"] {
                    let Some(s) = store.get(&group, lib) else {
                        continue;
                    };
                    let r = median(&s.ratios);
                    let vs = match (r, ours) {
                        (Some(r), Some(o)) if lib != OURS => format!("{:.2}", r / o),
                        _ => "–".to_owned(),
                    };
                    let _ = writeln!(
                        o,
                        "| {mode} | {n} | {lib} | {} | {} | {} | {vs} |",
                        fmt_opt(median(&s.values), fmt_time),
                        spread(s),
                        fmt_opt(r, |x| format!("{x:.2}")),
                    );
                }
                for (variant, label) in [
                    ("plain", "baseline (ours build)"),
                    ("plain [rusqlite_migration build]", "baseline (peer build)"),
                ] {
                    if let Some(s) = store.get(&group, variant) {
                        let _ = writeln!(
                            o,
                            "| {mode} | {n} | {label} | {} | {} | 1 | – |",
                            fmt_opt(median(&s.values), fmt_time),
                            spread(s)
                        );
                    }
                }
                if let Some(ours) = ours {
                    if mode == "warm" {
                        if let Some(rf) = store.ratio(&group, REFINERY) {
                            targets.push(format!(
                                "| 1 warm, N={n}: faster than refinery | ours/refinery = {:.2} | {} |",
                                ours / rf,
                                verdict(ours < rf)
                            ));
                        }
                        if let Some(rm) = store.ratio(&group, RM) {
                            targets.push(format!(
                                "| 1 warm, N={n}: ≤ 1.5× rusqlite_migration | {:.2}× | {} |",
                                ours / rm,
                                verdict(ours / rm <= 1.5)
                            ));
                        }
                    } else {
                        targets.push(format!(
                            "| 1 fresh, N={n}: ≤ 1.2× open + schema query | {ours:.2}× | {} |",
                            verdict(ours <= 1.2)
                        ));
                    }
                }
            }
            if let (Some(&first), Some(&last)) =
                (config.check_sizes.first(), config.check_sizes.last())
            {
                let a = store.value(&format!("check.{mode}.{first}"), OURS);
                let b = store.value(&format!("check.{mode}.{last}"), OURS);
                let base_a = store.value(&format!("check.{mode}.{first}"), "plain");
                let base_b = store.value(&format!("check.{mode}.{last}"), "plain");
                if let (Some(a), Some(b), Some(ba), Some(bb)) = (a, b, base_a, base_b) {
                    targets.push(format!(
                        "| 1 {mode}: constant in N (ours N={last} / N={first}) | {:.2}× (baseline {:.2}×) | {} |",
                        b / a,
                        bb / ba,
                        verdict(b / a <= 1.2 * (bb / ba).max(1.0))
                    ));
                }
            }
        }
    }

    if config.runs("pending") {
        let _ = writeln!(
            o,
            "\n### One new migration after a long history\n\n\
             Not a scenario of the issue: what a deploy of one new migration costs \
             a project with N - 1 applied. A copy of a database at version N - 1 \
             made by the library, a connection that has read the schema (an \
             application that opened its database), then the library's migrate \
             call; timed next to plain rusqlite applying the same file in one \
             transaction to a copy of a plain database, in alternating order in \
             one process. \"× plain\" is the median of those per-pair ratios. Ours \
             runs with the integrity check `Changed` and off.\n"
        );
        let _ = writeln!(o, "| N | runner | median | p25 – p75 | × plain |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for &n in &config.check_sizes {
            let group = format!("pending.{n}");
            for v in [
                "ours-changed",
                "ours-off",
                RM,
                REFINERY,
                "plain",
                "plain [rusqlite_migration build]",
                "plain [refinery build]",
            ] {
                let Some(s) = store.get(&group, v) else {
                    continue;
                };
                let _ = writeln!(
                    o,
                    "| {n} | {v} | {} | {} | {} |",
                    fmt_opt(median(&s.values), fmt_time),
                    spread(s),
                    fmt_opt(median(&s.ratios), |x| format!("{x:.2}")),
                );
            }
        }
    }

    if config.runs("fresh") {
        let n = config.fresh_n;
        let _ = writeln!(
            o,
            "\n### 2. New database, {n} migrations\n\n\
             Each variant on a new file, in a rotating order in one process; \
             \"× plain\" is the median of per-iteration ratios to plain rusqlite in \
             the same process (one transaction per migration; for all-in-one \
             variants, one transaction in all). Ours runs its default integrity \
             check (full). `plain-single+history` is plain all in one plus, in \
             its transaction, a history row per file and `user_version`; \
             `+check` adds `PRAGMA integrity_check` after: the least any \
             migrator that records its migrations (and checks the database) \
             does.\n"
        );
        let _ = writeln!(o, "| journal | runner | median | p25 – p75 | × plain |");
        let _ = writeln!(o, "|---|---|---|---|---|");
        for journal in ["delete", "wal"] {
            let group = format!("fresh.{journal}.{n}");
            let mut variants: Vec<&String> = store
                .samples
                .keys()
                .filter(|(g, _)| *g == group)
                .map(|(_, v)| v)
                .collect();
            variants.sort_by_key(|v| (!v.starts_with("ours"), v.starts_with("plain"), *v));
            for v in variants {
                let Some(s) = store.get(&group, v) else {
                    continue;
                };
                let _ = writeln!(
                    o,
                    "| {journal} | {v} | {} | {} | {} |",
                    fmt_opt(median(&s.values), fmt_time),
                    spread(s),
                    fmt_opt(median(&s.ratios), |x| format!("{x:.3}")),
                );
            }
            if let Some(r) = store.ratio(&group, OURS) {
                targets.push(format!(
                    "| 2 {journal}: per migration ≤ 1.15× plain | {r:.3}× | {} |",
                    verdict(r <= 1.15)
                ));
            }
            if let Some(r) = store.ratio(&group, "ours-single") {
                targets.push(format!(
                    "| 2 {journal}: all in one ≤ 1.05× plain | {r:.3}× | {} |",
                    verdict(r <= 1.05)
                ));
            }
            for (v, what) in [
                ("plain-single+history", "plain all in one + history rows"),
                (
                    "plain-single+history+check",
                    "plain all in one + history rows + `integrity_check`",
                ),
            ] {
                if let Some(r) = store.ratio(&group, v) {
                    targets.push(format!("| 2 {journal}: (reference) {what} | {r:.3}× | – |"));
                }
            }
            for v in [
                "ours-changed",
                "ours-single-changed",
                "ours-off",
                "ours-single-off",
            ] {
                let limit = if v.contains("single") { 1.05 } else { 1.15 };
                if let Some(r) = store.ratio(&group, v) {
                    targets.push(format!(
                        "| 2 {journal}: {v} ≤ {limit}× plain | {r:.3}× | {} |",
                        verdict(r <= limit)
                    ));
                }
            }
        }
    }

    for (kind, title) in [
        ("rebuild", "3 and 4. Rebuild of the parent table"),
        (
            "addcol",
            "5. Add a column to a small table next to the big ones",
        ),
    ] {
        if !config.runs(kind) {
            continue;
        }
        let _ = writeln!(
            o,
            "\n### {title} ({} parent rows, {} child rows)\n\n\
             One process per run (its peak RSS is VmHWM), variants in a rotating \
             order; ratios and memory deltas are to plain rusqlite in the same round. \
             Peers run with foreign keys turned off by the caller; ours with them on \
             (as a new connection has them), so that it runs the foreign-key check, \
             except the `/fk-off` variants, which run as the peers do. \
             `plain+check(table)` is plain plus `PRAGMA integrity_check(<changed \
             table>)` (what a `changed` level would run); \
             `plain+history+check(table)` adds, in the migration's transaction, \
             a history row and `user_version` (on ours' database, which has the \
             table): the least any migrator that records its migrations and \
             checks the changed table does; `plain+fk_check` is plain \
             plus a whole-database `PRAGMA foreign_key_check`.\n",
            config.rows, config.child
        );
        let _ = writeln!(
            o,
            "| runner | median | p25 – p75 | × plain | peak RSS | Δ RSS vs plain |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        let time_group = format!("{kind}.time");
        let rss_group = format!("{kind}.rss");
        for v in [
            "plain",
            "ours-full",
            "ours-quick",
            "ours-changed",
            "ours-off",
            "ours-changed/fk-off",
            "ours-off/fk-off",
            "plain+check(table)",
            "plain+history+check(table)",
            "plain+fk_check",
            RM,
            "plain [rusqlite_migration build]",
            REFINERY,
            "plain [refinery build]",
        ] {
            let Some(s) = store.get(&time_group, v) else {
                continue;
            };
            let rss = store.get(&rss_group, v);
            let _ = writeln!(
                o,
                "| {v} | {} | {} | {} | {} | {} |",
                fmt_opt(median(&s.values), fmt_time),
                spread(s),
                fmt_opt(median(&s.ratios), |x| format!("{x:.3}")),
                fmt_opt(rss.and_then(|r| median(&r.values)), |x| format!(
                    "{:.1} MiB",
                    x / MIB
                )),
                fmt_opt(rss.and_then(|r| median(&r.ratios)), |x| format!(
                    "{x:+.1} MiB"
                )),
            );
        }
        if kind == "rebuild" {
            if let Some(r) = store.ratio(&time_group, "ours-off") {
                targets.push(format!(
                    "| 3: integrity off ≤ 1.05× plain | {r:.3}× | {} |",
                    verdict(r <= 1.05)
                ));
            }
            if let Some(r) = store.ratio(&time_group, "ours-off/fk-off") {
                targets.push(format!(
                    "| 3: integrity off, foreign keys off by the caller (as the peers run) \
                     ≤ 1.05× plain | {r:.3}× | {} |",
                    verdict(r <= 1.05)
                ));
            }
            if let Some(r) = store.ratio(&time_group, "plain+fk_check") {
                targets.push(format!(
                    "| 3: (reference) plain + `foreign_key_check` | {r:.3}× | – |"
                ));
            }
            for v in ["ours-full", "ours-quick", "ours-changed", "ours-off"] {
                if let Some(d) = store.ratio(&rss_group, v) {
                    targets.push(format!(
                        "| 4: peak memory ({v}) ≤ plain + 10 MiB | {d:+.1} MiB | {} |",
                        verdict(d <= 10.0)
                    ));
                }
            }
        } else {
            if let Some(r) = store.ratio(&time_group, "ours-changed") {
                targets.push(format!(
                    "| 5: integrity `changed` ≤ 1.1× plain | {r:.3}× | {} |",
                    verdict(r <= 1.1)
                ));
            }
            if let Some(r) = store.ratio(&time_group, "ours-changed/fk-off") {
                targets.push(format!(
                    "| 5: integrity `changed`, foreign keys off by the caller \
                     ≤ 1.1× plain | {r:.3}× | {} |",
                    verdict(r <= 1.1)
                ));
            }
            if let Some(r) = store.ratio(&time_group, "plain+check(table)") {
                targets.push(format!(
                    "| 5: (reference) plain + `integrity_check(settings)` | {r:.3}× | – |"
                ));
            }
            if let Some(r) = store.ratio(&time_group, "plain+history+check(table)") {
                targets.push(format!(
                    "| 5: (reference) plain + history row + `integrity_check(settings)` \
                     | {r:.3}× | – |"
                ));
            }
        }
    }

    if config.runs("cascade") {
        let _ = writeln!(
            o,
            "\n### Parent-table rebuild with an `ON DELETE CASCADE` child \
             (foreign keys as a new connection has them)\n"
        );
        let _ = writeln!(
            o,
            "| runner | foreign_keys | child rows before | after | result |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for (key, value) in &store.infos {
            let Some(lib) = key.strip_prefix("cascade.") else {
                continue;
            };
            let field = |name: &str| {
                value
                    .split('\t')
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .unwrap_or("?")
                    .to_owned()
            };
            let _ = writeln!(
                o,
                "| {lib} | {} | {} | {} | {} |",
                field("fk"),
                field("before"),
                field("after"),
                field("result")
            );
        }
    }

    if config.runs("cost") {
        let size: f64 = store
            .infos
            .get("cost.size_bytes")
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            o,
            "\n### Cost of the whole-database checks ({:.0} MB database: {} parent \
             rows, {} child rows with a foreign key; ours build, warm OS cache)\n",
            size / 1e6,
            config.cost_rows,
            config.cost_rows * 2
        );
        let _ = writeln!(o, "| check | median | per GB |");
        let _ = writeln!(o, "|---|---|---|");
        for check in [
            "integrity_check",
            "quick_check",
            "foreign_key_check",
            "integrity_check(child)",
            "integrity_check(settings)",
            "foreign_key_check(settings)",
        ] {
            if let Some(t) = store.value("cost", check) {
                let per_gb = if check.contains("settings") || check.contains("child") {
                    "–".to_owned()
                } else {
                    fmt_time(t / (size / 1e9))
                };
                let _ = writeln!(o, "| `PRAGMA {check}` | {} | {per_gb} |", fmt_time(t));
            }
        }
    }

    if !targets.is_empty() {
        let _ = writeln!(o, "\n### Targets of the issue\n");
        let _ = writeln!(o, "| target | measured | |");
        let _ = writeln!(o, "|---|---|---|");
        for t in targets {
            let _ = writeln!(o, "{t}");
        }
    }
    out
}
