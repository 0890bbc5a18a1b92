//! The HTML report rendered in headless Chromium (Debian's `chromium`,
//! installed by `.ci/run`): the page holds the charts with their series,
//! and its screenshot is not blank.

use crate::report_history;

use keywarden::report::charts::{BUDGET, DISABLED, SETTING, SPEND};
use plotters::style::RGBColor;
use report_history::{SINCE, UNTIL, keywarden_ok, two_months};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// The `<figure>` of the budget chart of `rule`.
fn figure<'a>(html: &'a str, class: &str, rule: Option<&str>) -> &'a str {
    let open = match rule {
        Some(rule) => format!("<figure class=\"{class}\" data-rule=\"{rule}\""),
        None => format!("<figure class=\"{class}\""),
    };
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in the page"));
    let end = start + html[start..].find("</figure>").unwrap();
    &html[start..end]
}

fn screenshot(html: &Path, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let out = crate::common::chromium(profile.path())
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2000")
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The RGB pixels of a PNG, with its width.
fn pixels(png: &Path) -> (usize, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width as usize, px)
}

#[tokio::test(flavor = "multi_thread")]
async fn html_report_renders_its_charts_in_chromium() {
    let h = two_months().await;
    let html_path = h.dir.path().join("report.html");
    keywarden_ok(
        &h,
        &[
            "report",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--format",
            "html",
            "--output",
            &html_path.display().to_string(),
        ],
    )
    .await;
    let html = std::fs::read_to_string(&html_path).unwrap();
    for banned in ["url(", "src=", "<script", "<link", "@import"] {
        assert!(!html.contains(banned), "the page holds {banned:?}");
    }

    // One budget chart per budget rule: the spend and budget lines and the
    // crossing marks.
    let chart = figure(&html, "budget-chart", Some("team-a-monthly"));
    assert!(chart.contains("<svg"), "{chart}");
    let polyline_with = |svg: &str, color: &str| {
        svg.split("<polyline")
            .skip(1)
            .any(|p| p[..p.find("/>").unwrap_or(p.len())].contains(color))
    };
    assert!(polyline_with(chart, &hex(SPEND)), "no spend line");
    assert!(polyline_with(chart, &hex(BUDGET)), "no budget line");
    assert_eq!(chart.matches("exceeded Nov 10 10:00").count(), 1);
    assert_eq!(chart.matches("exceeded Dec 20 10:00").count(), 1);
    assert!(chart.contains("<circle"), "no crossing mark");
    assert!(
        !html.contains("data-rule=\"holiday-support\""),
        "a rule without a budget has no budget chart"
    );

    // The timeline: a row per held key, red for disabled, amber for the season.
    let timeline = figure(&html, "timeline", None);
    for name in ["team-a-ci", "team-a-web", "support-1"] {
        assert!(timeline.contains(name), "no row for {name}");
    }
    let rects = |color: &str| {
        timeline
            .split("<rect")
            .filter(|r| r[..r.find("/>").unwrap_or(r.len())].contains(&format!("fill=\"{color}\"")))
            .count()
    };
    // Two disabled periods per team-a key, one season period (limit and reset).
    assert!(
        rects(&hex(DISABLED)) >= 4,
        "disabled bars: {}",
        rects(&hex(DISABLED))
    );
    assert!(
        rects(&hex(SETTING)) >= 2,
        "setting bars: {}",
        rects(&hex(SETTING))
    );

    // Chromium renders it: more than one colour, and the chart colours present.
    let png_path: PathBuf = h.dir.path().join("report.png");
    screenshot(&html_path, &png_path);
    let (width, px) = pixels(&png_path);
    let colours: HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(colours.len() > 1, "the screenshot is blank");
    let near = |p: &[u8; 3], c: RGBColor| {
        p.iter()
            .zip([c.0, c.1, c.2])
            .all(|(a, b)| (i16::from(*a) - i16::from(b)).abs() <= 12)
    };
    let spend = px.iter().filter(|p| near(p, SPEND)).count();
    let red = px.iter().filter(|p| near(p, BUDGET)).count();
    let amber = px.iter().filter(|p| near(p, SETTING)).count();
    assert!(
        spend > 100,
        "no spend line drawn ({spend} px, width {width})"
    );
    assert!(
        red > 100,
        "no budget line or disabled bars drawn ({red} px)"
    );
    assert!(amber > 100, "no season bars drawn ({amber} px)");

    if let Ok(dir) = std::env::var("KEYWARDEN_REPORT_SCREENSHOT") {
        std::fs::copy(&png_path, Path::new(&dir)).unwrap();
    }
}
