//! `mailaudit-bench reports`: throughput and peak memory of `mailaudit reports parse` and
//! `mailaudit reports ingest` on a generated corpus of DMARC aggregate reports, optionally side
//! by side with parsedmarc on the same files.
//!
//! Sizes are in MB of 1,048,576 bytes (MiB) throughout, of XML before compression.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mailaudit_bench::corpus::{Corpus, CorpusSpec, Reporter, link_into, write_corpus};
use mailaudit_bench::fleet::DEFAULT_SEED;
use mailaudit_bench::isolation::{loopback_only_prefix, network_isolated};
use mailaudit_bench::process::{self, ChildRun, Stdout};

use crate::{head, load_average, mailaudit_path, verdict};

/// The parsedmarc release the comparison is for.
const PARSEDMARC_VERSION: &str = "11.1.0";

const MB: f64 = 1024.0 * 1024.0;

/// Measure `mailaudit reports parse` and `reports ingest` (records/s, MB/s of XML, peak RSS)
/// on a deterministic corpus of DMARC aggregate reports generated into a temporary directory,
/// and, with --parsedmarc, parsedmarc on the same files (offline, in a network namespace with
/// only loopback).
#[derive(Debug, clap::Args)]
pub(crate) struct ReportsArgs {
    /// XML in the corpus, in MB (MiB, before compression).
    #[arg(long, value_name = "MB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    mb: u64,

    /// XML in the corpus's largest file, in MB (every other file is under half of it).
    #[arg(long, value_name = "MB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=90))]
    largest_mb: u64,

    /// Seed of the corpus (the same seed and sizes give the same files).
    #[arg(long, value_name = "SEED", default_value_t = DEFAULT_SEED)]
    seed: u64,

    /// Timed runs of each mailaudit command; the median is reported.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// The mailaudit binary [default: `mailaudit` next to this binary, i.e. target/release/].
    #[arg(long, value_name = "PATH")]
    mailaudit: Option<PathBuf>,

    /// Also time parsedmarc: a virtual environment it is installed in (`bin/parsedmarc` is
    /// used) or the program itself. The bench installs nothing.
    #[arg(long, value_name = "VENV-OR-PROGRAM")]
    parsedmarc: Option<PathBuf>,

    /// Give parsedmarc one file in K of the corpus (1: all of it); mailaudit is timed on the
    /// same subset, run for run, for the ratio.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    parsedmarc_every: u64,

    /// Timed runs of parsedmarc, each followed by mailaudit's on the same files.
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    parsedmarc_runs: u32,

    /// Target: mailaudit at least this many times parsedmarc's records/s.
    #[arg(long, value_name = "X", default_value_t = 50.0)]
    target_ratio: f64,

    /// Also show that peak memory follows the largest file, not the corpus: parse and ingest
    /// a corpus twice as large with the same largest file, one of the same size with a larger
    /// largest file (--memory-largest-mb), and the largest file alone.
    #[arg(long)]
    memory: bool,

    /// The largest file of the --memory corpus that has a larger one, in MB.
    #[arg(long, value_name = "MB", default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=90))]
    memory_largest_mb: u64,

    /// Skip `reports ingest` (parse only).
    #[arg(long)]
    no_ingest: bool,

    /// Write the corpus into this directory (created; kept afterwards) instead of a
    /// temporary one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One timed run of a program over a set of files.
#[derive(Debug)]
struct Measured {
    child: ChildRun,
    records: u64,
    xml_bytes: u64,
}

impl Measured {
    fn seconds(&self) -> f64 {
        self.child.wall.as_secs_f64().max(1e-9)
    }
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds()
    }
    fn mb_per_s(&self) -> f64 {
        self.xml_bytes as f64 / MB / self.seconds()
    }
    fn peak_rss_mb(&self) -> Option<f64> {
        self.child.peak_rss_kib.map(|kib| kib as f64 / 1024.0)
    }
}

/// The runs of one program on one set of files.
#[derive(Debug, Default)]
struct Series {
    runs: Vec<Measured>,
}

impl Series {
    /// The run of median wall time (the lower middle one of an even count).
    fn median(&self) -> Option<&Measured> {
        let mut by_time: Vec<&Measured> = self.runs.iter().collect();
        by_time.sort_by_key(|m| m.child.wall);
        by_time.get(by_time.len().saturating_sub(1) / 2).copied()
    }
    /// The highest peak RSS of all runs.
    fn peak_rss_mb(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter_map(Measured::peak_rss_mb)
            .reduce(f64::max)
    }
}

pub(crate) fn run(args: &ReportsArgs) -> Result<bool> {
    let mailaudit = mailaudit_path(args.mailaudit.as_deref())?;
    let parsedmarc = args
        .parsedmarc
        .as_deref()
        .map(parsedmarc_program)
        .transpose()?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let corpus_dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().join("corpus"),
    };
    std::fs::create_dir_all(&corpus_dir)
        .with_context(|| format!("cannot create {}", corpus_dir.display()))?;
    if std::fs::read_dir(&corpus_dir)?.next().is_some() {
        bail!(
            "{} is not empty: give an empty or new directory to --dir",
            corpus_dir.display()
        );
    }

    let spec = CorpusSpec {
        xml_bytes: args.mb * (1 << 20),
        largest_bytes: args.largest_mb * (1 << 20),
        seed: args.seed,
    };
    let started = Instant::now();
    let corpus = write_corpus(&corpus_dir, &spec).context("cannot write the corpus")?;
    println!(
        "mailaudit-bench reports: corpus of {} in {} ({:.2}s to generate)",
        describe(&corpus),
        corpus_dir.display(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "mailaudit {}; {} CPUs; sizes in MB of 2^20 bytes of XML (before compression)",
        mailaudit.display(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    print_load("before the runs");
    println!();

    let mut ok = true;
    let parse = series(
        &corpus,
        &corpus_dir,
        args.runs,
        "parse",
        true,
        |dir, check| parse_run(&mailaudit, dir, &corpus, check),
    )?;
    ok &= parse.runs.iter().all(|r| r.child.status.success());
    let ingest = if args.no_ingest {
        None
    } else {
        let db_dir = temp.path().join("db");
        std::fs::create_dir_all(&db_dir)?;
        let ingest = series(&corpus, &corpus_dir, args.runs, "ingest", true, |dir, _| {
            ingest_run(&mailaudit, dir, &corpus, &db_dir)
        })?;
        Some(ingest)
    };

    if let Some(parsedmarc) = &parsedmarc {
        println!();
        ok &= compare_parsedmarc(
            args,
            &mailaudit,
            parsedmarc,
            &corpus,
            temp.path(),
            &parse,
            ingest.as_ref(),
        )?;
    }

    if args.memory {
        println!();
        memory_series(
            args,
            &mailaudit,
            &corpus,
            &parse,
            ingest.as_ref(),
            temp.path(),
        )?;
    }
    print_load("after the runs");
    Ok(ok)
}

/// "612 files (…), N records, X MB of XML".
fn describe(corpus: &Corpus) -> String {
    let records = corpus.records();
    format!(
        "{} files ({} gzip; {} Google, {} Microsoft, {} Yahoo, {} RFC 9990), {records} records \
         ({:.0}% IPv6), {:.1} MB of XML ({:.1} MB on disk), largest file {:.1} MB",
        corpus.files.len(),
        corpus.gzip_files(),
        corpus.files_from(Reporter::Google),
        corpus.files_from(Reporter::Microsoft),
        corpus.files_from(Reporter::Yahoo),
        corpus.files_from(Reporter::Rfc9990),
        corpus.ipv6_records() as f64 * 100.0 / records.max(1) as f64,
        corpus.xml_bytes() as f64 / MB,
        corpus.disk_bytes() as f64 / MB,
        corpus.largest_xml_bytes() as f64 / MB,
    )
}

fn print_load(when: &str) {
    if let Some(load) = load_average() {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        println!(
            "load average {when}: {load:.2}{}",
            if load > cpus / 2.0 {
                " (other work is running: figures will be low and noisy)"
            } else {
                ""
            }
        );
    }
}

/// With `check`, a first run whose output is checked (it also warms the page cache; not
/// counted), then `runs` timed ones, each printed; then the median. `one` is given whether
/// its run is the check run.
fn series(
    corpus: &Corpus,
    dir: &Path,
    runs: u32,
    name: &str,
    check: bool,
    mut one: impl FnMut(&Path, bool) -> Result<Measured>,
) -> Result<Series> {
    println!(
        "mailaudit reports {name}: {} files, {} records, {:.1} MB of XML",
        corpus.files.len(),
        corpus.records(),
        corpus.xml_bytes() as f64 / MB
    );
    println!(
        "  {:>10}  {:>8}  {:>10}  {:>8}  {:>9}  {:>7}",
        "run", "seconds", "records/s", "MB/s", "peak RSS", "CPU s"
    );
    let mut out = Series::default();
    for i in u32::from(!check)..=runs {
        let run = one(dir, i == 0)?;
        print_run(if i == 0 { "check" } else { "" }, i, &run);
        if i > 0 {
            out.runs.push(run);
        }
    }
    if let Some(m) = out.median() {
        println!(
            "  median of {runs}: {:.2}s, {:.0} records/s, {:.1} MB/s; peak RSS {}",
            m.seconds(),
            m.records_per_s(),
            m.mb_per_s(),
            mb(out.peak_rss_mb())
        );
    }
    Ok(out)
}

fn print_run(label: &str, i: u32, run: &Measured) {
    let label = if label.is_empty() {
        i.to_string()
    } else {
        label.to_owned()
    };
    println!(
        "  {label:>10}  {:>8.2}  {:>10.0}  {:>8.1}  {:>9}  {:>7}{}",
        run.seconds(),
        run.records_per_s(),
        run.mb_per_s(),
        mb(run.peak_rss_mb()),
        run.child
            .cpu
            .map_or("?".to_owned(), |d| format!("{:.2}", d.as_secs_f64())),
        if run.child.processes > 1 {
            format!(
                "  ({} processes: RSS and CPU summed over them)",
                run.child.processes
            )
        } else {
            String::new()
        }
    );
}

fn mb(value: Option<f64>) -> String {
    value.map_or("?".to_owned(), |v| format!("{v:.0} MB"))
}

/// `mailaudit reports parse DIR --format json`; with `check`, its output is read and its
/// records counted (against the corpus), otherwise it goes to `/dev/null`.
fn parse_run(mailaudit: &Path, dir: &Path, corpus: &Corpus, check: bool) -> Result<Measured> {
    let mut command = Command::new(mailaudit);
    command
        .args(["reports", "parse"])
        .arg(dir)
        .args(["--format", "json"]);
    let stdout = if check {
        Stdout::Count(b"\"source_ip\":".to_vec())
    } else {
        Stdout::Null
    };
    let child = process::run_with(command, stdout)
        .with_context(|| format!("cannot run {}", mailaudit.display()))?;
    if !child.status.success() {
        bail!(
            "mailaudit reports parse exited with {}; its standard error:\n{}",
            child.status,
            head(&child.stderr, 10)
        );
    }
    if check && child.stdout_matches != corpus.records() {
        bail!(
            "mailaudit reports parse printed {} records; the corpus has {}",
            child.stdout_matches,
            corpus.records()
        );
    }
    Ok(Measured {
        child,
        records: corpus.records(),
        xml_bytes: corpus.xml_bytes(),
    })
}

/// `mailaudit reports ingest DIR --db sqlite://DB_DIR/ingest.db` into a new database; checks
/// that every file was stored.
fn ingest_run(mailaudit: &Path, dir: &Path, corpus: &Corpus, db_dir: &Path) -> Result<Measured> {
    let db = db_dir.join("ingest.db");
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut command = Command::new(mailaudit);
    command
        .args(["reports", "ingest"])
        .arg(dir)
        .arg("--db")
        .arg(format!("sqlite://{}", db.display()));
    let child = process::run_with(command, Stdout::Capture)
        .with_context(|| format!("cannot run {}", mailaudit.display()))?;
    let stored = child
        .stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<usize>().ok());
    if !child.status.success() || stored != Some(corpus.files.len()) {
        bail!(
            "mailaudit reports ingest exited with {} and said {:?} ({} files); its standard \
             error:\n{}",
            child.status,
            child.stdout.trim(),
            corpus.files.len(),
            head(&child.stderr, 10)
        );
    }
    Ok(Measured {
        child,
        records: corpus.records(),
        xml_bytes: corpus.xml_bytes(),
    })
}

/// The parsedmarc program: `VENV/bin/parsedmarc` for a directory, else the path itself.
fn parsedmarc_program(given: &Path) -> Result<PathBuf> {
    let program = if given.is_dir() {
        given.join("bin").join("parsedmarc")
    } else {
        given.to_path_buf()
    };
    if !program.is_file() {
        bail!(
            "no parsedmarc at {}: install it yourself (the bench installs nothing), e.g. \
             `python3 -m venv /tmp/pdm-venv && /tmp/pdm-venv/bin/pip install \
             parsedmarc=={PARSEDMARC_VERSION}`, then pass --parsedmarc /tmp/pdm-venv",
            program.display()
        );
    }
    Ok(program)
}

/// parsedmarc on one file in K of the corpus, offline and in a namespace with only loopback,
/// then mailaudit on the same files; prints the ratios. Returns whether the target ratio is
/// met (true when the comparison could not be made).
fn compare_parsedmarc(
    args: &ReportsArgs,
    mailaudit: &Path,
    parsedmarc: &Path,
    corpus: &Corpus,
    temp: &Path,
    parse_full: &Series,
    ingest_full: Option<&Series>,
) -> Result<bool> {
    let version = Command::new(parsedmarc)
        .arg("--version")
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
        .unwrap_or_default();
    if version != PARSEDMARC_VERSION {
        println!(
            "parsedmarc: note: version {version:?} found; the comparison is meant for {PARSEDMARC_VERSION}"
        );
    }
    // Only loopback: parsedmarc is run with --offline, and the namespace makes sure that
    // nothing it does (DNS, GeoIP or list downloads) can leave the machine.
    let prefix: Vec<&str> = if network_isolated() {
        Vec::new()
    } else if let Some(prefix) = loopback_only_prefix() {
        prefix
    } else {
        println!(
            "parsedmarc: cannot create a network namespace with `unshare --net` (needs root or \
             unprivileged user namespaces); parsedmarc must not run with network access, so the \
             comparison is skipped."
        );
        return Ok(true);
    };

    let subset_dir = temp.join("parsedmarc-input");
    std::fs::create_dir_all(&subset_dir)?;
    let subset = link_into(&corpus.every(args.parsedmarc_every), &subset_dir)
        .context("cannot link the subset")?;
    if subset.files.is_empty() {
        bail!(
            "--parsedmarc-every {} leaves no file",
            args.parsedmarc_every
        );
    }
    let k = args.parsedmarc_every;
    println!(
        "parsedmarc {version} on {} of the corpus (one file in {k}: {}); `--offline -s -o DIR`, \
         one process (its default n_procs=1), {}",
        if k == 1 {
            "all".to_owned()
        } else {
            format!("a 1/{k} subset")
        },
        describe(&subset),
        if prefix.is_empty() {
            "already in a namespace with only loopback".to_owned()
        } else {
            format!("under `{}` (only loopback)", prefix.join(" "))
        }
    );
    let out_dir = temp.join("parsedmarc-output");
    let db_dir = temp.join("db-subset");
    std::fs::create_dir_all(&db_dir)?;
    // mailaudit's output on the subset is checked once, untimed.
    parse_run(mailaudit, &subset_dir, &subset, true)?;
    println!(
        "interleaved on the same files ({} files, {} records, {:.1} MB of XML): each parsedmarc \
         run, then mailaudit's, so that both see the same load",
        subset.files.len(),
        subset.records(),
        subset.xml_bytes() as f64 / MB
    );
    println!(
        "  {:>10}  {:>8}  {:>10}  {:>8}  {:>9}  {:>7}",
        "run", "seconds", "records/s", "MB/s", "peak RSS", "CPU s"
    );
    let (mut pdm, mut same, mut same_ingest) =
        (Series::default(), Series::default(), Series::default());
    for i in 1..=args.parsedmarc_runs {
        let run = parsedmarc_run(parsedmarc, &prefix, &subset_dir, &subset, &out_dir)?;
        print_run(&format!("pdm {i}"), i, &run);
        pdm.runs.push(run);
        let run = parse_run(mailaudit, &subset_dir, &subset, false)?;
        print_run(&format!("parse {i}"), i, &run);
        same.runs.push(run);
        if ingest_full.is_some() {
            let run = ingest_run(mailaudit, &subset_dir, &subset, &db_dir)?;
            print_run(&format!("ingest {i}"), i, &run);
            same_ingest.runs.push(run);
        }
    }
    let same = Some(same);
    let same_ingest = ingest_full.is_some().then_some(same_ingest);
    let Some(pdm_median) = pdm.median() else {
        return Ok(true);
    };
    let pdm_rate = pdm_median.records_per_s();
    let on_subset = same.as_ref().unwrap_or(parse_full);
    let ingest_on_subset = same_ingest.as_ref().or(ingest_full);
    println!();
    println!(
        "parsedmarc {version}: {:.0} records/s, {:.2} MB/s, peak RSS {} ({} files, {:.1} MB of XML)",
        pdm_rate,
        pdm_median.mb_per_s(),
        mb(pdm.peak_rss_mb()),
        subset.files.len(),
        subset.xml_bytes() as f64 / MB
    );
    let mut ok = true;
    for (name, series, full) in [
        ("parse", Some(on_subset), Some(parse_full)),
        ("ingest", ingest_on_subset, ingest_full),
    ] {
        let (Some(series), Some(full)) = (series, full) else {
            continue;
        };
        let (Some(m), Some(f)) = (series.median(), full.median()) else {
            continue;
        };
        let ratio = m.records_per_s() / pdm_rate;
        let met = ratio >= args.target_ratio;
        ok &= met;
        println!(
            "ratio mailaudit reports {name} / parsedmarc, same files: {ratio:.0}x records/s \
             ({:.0} vs {:.0}; MB/s alike: {:.1} vs {:.2}); target >= {:.0}x: {}; with mailaudit's \
             full-corpus median: {:.0}x",
            m.records_per_s(),
            pdm_rate,
            m.mb_per_s(),
            pdm_median.mb_per_s(),
            args.target_ratio,
            verdict(met),
            f.records_per_s() / pdm_rate
        );
        // CPU time varies less with other load on the machine than wall time does.
        if let (Some(ours), Some(theirs)) = (m.child.cpu, pdm_median.child.cpu) {
            println!(
                "  CPU time on the same files: {:.2}s vs {:.2}s: {:.0}x (informative; the verdict \
                 is on wall time)",
                ours.as_secs_f64(),
                theirs.as_secs_f64(),
                theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(ok)
}

/// parsedmarc over `dir` into a fresh `out_dir`; checks it wrote every record.
fn parsedmarc_run(
    parsedmarc: &Path,
    prefix: &[&str],
    dir: &Path,
    subset: &Corpus,
    out_dir: &Path,
) -> Result<Measured> {
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::create_dir_all(out_dir)?;
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("--").arg(parsedmarc);
            c
        }
        None => Command::new(parsedmarc),
    };
    command
        .args(["--offline", "-s", "-o"])
        .arg(out_dir)
        .arg(dir);
    let child = process::run(command).context("cannot run parsedmarc")?;
    let output = out_dir.join("aggregate.json");
    let written = std::fs::File::open(&output)
        .map(|f| process::count_matches(std::io::BufReader::new(f), b"\"ip_address\":"))
        .unwrap_or(0);
    if !child.status.success() || written != subset.records() {
        bail!(
            "parsedmarc exited with {} and wrote {written} records of {} to {}; its standard \
             error:\n{}",
            child.status,
            subset.records(),
            output.display(),
            head(&child.stderr, 10)
        );
    }
    let _ = std::fs::remove_dir_all(out_dir);
    Ok(Measured {
        child,
        records: subset.records(),
        xml_bytes: subset.xml_bytes(),
    })
}

/// Peak RSS of parse and ingest on corpora that differ in total size or in their largest file.
fn memory_series(
    args: &ReportsArgs,
    mailaudit: &Path,
    corpus: &Corpus,
    parse: &Series,
    ingest: Option<&Series>,
    temp: &Path,
) -> Result<()> {
    println!(
        "Peak memory against corpus size and largest file (one run each, peak RSS of the child):"
    );
    println!(
        "  {:<44}  {:>6}  {:>5}  {:>8}  {:>10}  {:>8}  {:>10}",
        "corpus", "files", "XML", "largest", "parse RSS", "parse s", "ingest RSS"
    );
    let row =
        |name: &str, c: &Corpus, parse_rss: Option<f64>, secs: f64, ingest_rss: Option<f64>| {
            println!(
                "  {name:<44}  {:>6}  {:>5.0}  {:>8.1}  {:>10}  {:>8.2}  {:>10}",
                c.files.len(),
                c.xml_bytes() as f64 / MB,
                c.largest_xml_bytes() as f64 / MB,
                mb(parse_rss),
                secs,
                mb(ingest_rss)
            );
        };
    row(
        &format!("the corpus above ({} MB)", args.mb),
        corpus,
        parse.peak_rss_mb(),
        parse.median().map_or(0.0, Measured::seconds),
        ingest.and_then(Series::peak_rss_mb),
    );
    let variants = [
        (
            "twice as large, same largest file".to_owned(),
            CorpusSpec {
                xml_bytes: 2 * args.mb * (1 << 20),
                largest_bytes: args.largest_mb * (1 << 20),
                seed: args.seed,
            },
        ),
        (
            format!("same size, largest file {} MB", args.memory_largest_mb),
            CorpusSpec {
                xml_bytes: args.mb * (1 << 20),
                largest_bytes: args.memory_largest_mb * (1 << 20),
                seed: args.seed,
            },
        ),
    ];
    let mut index = 0;
    let mut one = |name: &str, c: &Corpus, dir: &Path| -> Result<()> {
        index += 1;
        let p = parse_run(mailaudit, dir, c, false)?;
        let i = if args.no_ingest {
            None
        } else {
            let db_dir = temp.join(format!("db-memory-{index}"));
            std::fs::create_dir_all(&db_dir)?;
            let run = ingest_run(mailaudit, dir, c, &db_dir)?;
            let _ = std::fs::remove_dir_all(&db_dir);
            run.peak_rss_mb()
        };
        row(name, c, p.peak_rss_mb(), p.seconds(), i);
        Ok(())
    };
    for (name, spec) in variants {
        let dir = temp.join(format!(
            "memory-corpus-{}",
            spec.xml_bytes ^ spec.largest_bytes
        ));
        std::fs::create_dir_all(&dir)?;
        let c = write_corpus(&dir, &spec).context("cannot write a corpus")?;
        one(&name, &c, &dir)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let alone_dir = temp.join("memory-largest-alone");
    std::fs::create_dir_all(&alone_dir)?;
    let largest = Corpus {
        files: corpus
            .files
            .iter()
            .filter(|f| f.xml_bytes == corpus.largest_xml_bytes())
            .take(1)
            .cloned()
            .collect(),
    };
    let alone = link_into(&largest, &alone_dir)?;
    one("the largest file of the corpus alone", &alone, &alone_dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    fn measured(secs: u64, rss_kib: u64) -> Measured {
        let child = process::run(Command::new("true")).expect("true runs");
        Measured {
            child: ChildRun {
                wall: Duration::from_secs(secs),
                peak_rss_kib: Some(rss_kib),
                ..child
            },
            records: 1_000,
            xml_bytes: 1 << 20,
        }
    }

    #[test]
    fn series_median_and_rates() {
        let series = Series {
            runs: vec![measured(4, 1024), measured(1, 4096), measured(2, 2048)],
        };
        let m = series.median().expect("runs");
        assert_eq!(m.child.wall, Duration::from_secs(2));
        assert!((m.records_per_s() - 500.0).abs() < 1e-9);
        assert!((m.mb_per_s() - 0.5).abs() < 1e-9);
        assert_eq!(series.peak_rss_mb(), Some(4.0));
        let even = Series {
            runs: vec![measured(3, 1), measured(1, 1)],
        };
        assert_eq!(
            even.median().map(|m| m.child.wall),
            Some(Duration::from_secs(1))
        );
        assert!(Series::default().median().is_none());
    }

    #[test]
    fn parsedmarc_is_found_in_a_venv_or_given_directly() {
        let venv = tempfile::tempdir().expect("tempdir");
        assert!(parsedmarc_program(venv.path()).is_err());
        std::fs::create_dir_all(venv.path().join("bin")).expect("mkdir");
        let program = venv.path().join("bin").join("parsedmarc");
        std::fs::write(&program, "#!/bin/sh\n").expect("write");
        assert_eq!(parsedmarc_program(venv.path()).expect("found"), program);
        assert_eq!(parsedmarc_program(&program).expect("found"), program);
    }
}
