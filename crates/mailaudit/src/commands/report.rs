//! `mailaudit report` (the customer report as HTML or PDF) and `mailaudit branding` (the MSP's
//! name and logo on it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mailaudit_app::accounts::Actor;
use mailaudit_app::customer_report::{
    LOGO_SETTING, NAME_SETTING, branding, customer_report, logo_data_url,
};
use mailaudit_portal::pages::report::period;
use mailaudit_portal::report_html::{self, Paper};
use mailaudit_store::Store;

use crate::cli::{BrandingArgs, PaperSize, ReportArgs, ReportFormat};

/// How long Chromium may take to print the PDF.
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Chromium names looked up on PATH, in order.
const CHROMIUM_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

pub(crate) async fn report_cmd(store: &dyn Store, args: &ReportArgs) -> Result<ExitCode> {
    let length = period(&args.since).map_err(anyhow::Error::msg)?;
    if args.format == ReportFormat::Pdf && args.output.is_none() {
        bail!("a PDF report needs --output FILE");
    }
    // Chromium is looked for before the report is made, so a missing one fails at once.
    let chromium = match args.format {
        ReportFormat::Pdf => Some(find_chromium(args.chromium.as_deref())?),
        ReportFormat::Html => None,
    };
    let now = mailaudit_store::now();
    let report = customer_report(store, &args.customer, now - length, now)
        .await
        .with_context(|| format!("the report of the customer {:?}", args.customer))?;
    let brand = branding(store).await.context("reading the branding")?;
    let paper = match args.paper {
        PaperSize::A4 => Paper::A4,
        PaperSize::Letter => Paper::Letter,
    };
    let html = report_html::page(&report, &brand, paper);
    match (&chromium, &args.output) {
        (None, None) => std::io::stdout().lock().write_all(html.as_bytes())?,
        (None, Some(path)) => std::fs::write(path, &html)
            .with_context(|| format!("cannot write {}", path.display()))?,
        (Some(browser), Some(path)) => print_pdf(browser, &html, path)?,
        (Some(_), None) => unreachable!("checked above"),
    }
    if let Some(path) = &args.output {
        eprintln!(
            "mailaudit: the report of {} ({} domains, {} to {}) written to {}",
            report.customer,
            report.lines.len(),
            mailaudit_core::guide::date(report.since),
            mailaudit_core::guide::date(report.now),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The Chromium to print with: `--chromium`, else MAILAUDIT_CHROMIUM, else the first of
/// [`CHROMIUM_NAMES`] on PATH.
fn find_chromium(given: Option<&Path>) -> Result<PathBuf> {
    let named = given.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("MAILAUDIT_CHROMIUM")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    });
    if let Some(p) = named {
        if !p.is_file() {
            bail!(
                "no Chromium at {} (--chromium or MAILAUDIT_CHROMIUM)",
                p.display()
            );
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in CHROMIUM_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "no Chromium found to print the PDF (looked for {} on PATH): install Chromium (Debian: \
         apt install chromium), name it with --chromium PATH or MAILAUDIT_CHROMIUM, or write \
         --format html and print that",
        CHROMIUM_NAMES.join(", ")
    )
}

/// Whether this process runs as root (Chromium's sandbox refuses to start as root).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Prints `html` to the PDF `out` with headless Chromium (a fresh profile in a temporary
/// directory; the page has no script and no external asset, so nothing is fetched).
fn print_pdf(browser: &Path, html: &str, out: &Path) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).context("cannot write the page to print")?;
    let target = dir.path().join("report.pdf");
    let mut cmd = Command::new(browser);
    cmd.arg("--headless")
        .arg("--disable-gpu")
        .arg("--no-pdf-header-footer")
        .arg("--disable-background-networking")
        .arg("--disable-component-update")
        .arg("--no-first-run")
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", target.display()));
    if running_as_root() {
        cmd.arg("--no-sandbox");
    }
    cmd.arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", browser.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > PRINT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} did not print the report within {} s",
                browser.display(),
                PRINT_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let pdf = std::fs::read(&target).unwrap_or_default();
    if !status.success() || !pdf.starts_with(b"%PDF-") {
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!(
            "{} did not print the report ({status}){}",
            browser.display(),
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        );
    }
    std::fs::write(out, pdf).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

pub(crate) async fn branding_cmd(store: &dyn Store, args: &BrandingArgs) -> Result<ExitCode> {
    let now = mailaudit_store::now();
    let actor = Actor::cli();
    if let Some(name) = &args.name {
        let name = name.trim();
        if name.chars().any(char::is_control) || name.chars().count() > 200 {
            bail!("the name must be at most 200 characters, without control characters");
        }
        store.set_setting(NAME_SETTING, name).await?;
        actor.record(store, now, "branding-name", name, "").await?;
    }
    if let Some(path) = &args.logo {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let url = logo_data_url(&bytes).with_context(|| path.display().to_string())?;
        store.set_setting(LOGO_SETTING, &url).await?;
        actor
            .record(store, now, "branding-logo", &path.display().to_string(), "")
            .await?;
    }
    if args.no_logo {
        store.set_setting(LOGO_SETTING, "").await?;
        actor
            .record(store, now, "branding-logo", "", "removed")
            .await?;
    }
    let b = branding(store).await?;
    println!(
        "name: {}",
        b.name
            .as_deref()
            .unwrap_or("(none: reports say \"Your email security provider\")")
    );
    println!(
        "logo: {}",
        match &b.logo {
            Some(l) => format!(
                "{} ({} bytes)",
                l.split(';')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("data:"),
                l.len() * 3 / 4
            ),
            None => "(none)".into(),
        }
    );
    Ok(ExitCode::SUCCESS)
}
