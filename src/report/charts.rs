//! The charts of the HTML report, drawn with plotters into SVG strings:
//! spend against a budget over time, and a timeline of the periods in
//! which keywarden held keys disabled or under another setting.
//!
//! Text is drawn with plotters' built-in font estimate and the generic
//! `sans-serif` family, so the SVG names no font file and no URL. The
//! projection of a budget chart is a dashed SVG polyline (plotters' own
//! dashes are separate segments), `class="projection"`.

use super::periods::Period;
use super::projection::Projection;
use super::reached;
use crate::domain::Field;
use crate::store::report::BudgetPoint;
use chrono::{DateTime, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The colour of a spend line.
pub const SPEND: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// The colour of a budget line and of a crossing mark.
pub const BUDGET: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// The colour of a period in which a key was held disabled.
pub const DISABLED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// The colour of a period in which a key was held under another setting.
pub const SETTING: RGBColor = RGBColor(0xff, 0x9f, 0x1c);

const WIDTH: u32 = 1100;
const FONT: &str = "sans-serif";

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw a chart: {e}")
}

/// The label of time `x` on an axis over `[since, until)`: the date, and
/// the time of day too when the axis spans two days or less (a daily
/// window's labels would all read the same date).
fn time_label(x: i64, since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    let format = if until - since <= chrono::Duration::days(2) {
        "%b %d %H:%M"
    } else {
        "%b %d"
    };
    DateTime::<Utc>::from_timestamp(x, 0).map_or_else(String::new, |t| t.format(format).to_string())
}

/// Spend in `window` of budget rule `rule` over `[since, until)`, one point
/// per run (`points`, oldest first): the spend as a line, the budget as a
/// line, and each crossing (a reading at or over the budget after one
/// below it) marked with a dot and the date. With a `projection`, the
/// chart reaches the window's end and the spend goes on to it dashed.
pub fn budget_chart(
    rule: &str,
    window: &str,
    points: &[BudgetPoint],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    projection: Option<&Projection>,
) -> anyhow::Result<String> {
    let projection = projection.and_then(|p| Some((p, p.window_end?, p.projected_usd?)));
    let until = projection.map_or(until, |(_, end, _)| end.max(until));
    let mut svg = String::new();
    let mut dashed: Vec<[(i32, i32); 2]> = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let body = root
            .titled(
                &format!("{rule}: {window} spend against budget"),
                (FONT, 20),
            )
            .map_err(err)?;
        // The legend has a row of its own above the plot, where no line,
        // dot or "exceeded" note can be under it.
        let (legend, plot) = body.split_vertically(LEGEND_HEIGHT);
        if let Some(sample) = draw_budget_legend(&legend, projection.is_some())? {
            dashed.push(sample);
        }
        let top = points
            .iter()
            .map(|p| p.spend_usd.max(p.budget_usd))
            .chain(projection.map(|(_, _, usd)| usd))
            .fold(1.0_f64, f64::max)
            * 1.15;
        let decimals = usd_tick_decimals(top);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(since.timestamp()..until.timestamp(), 0.0..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| time_label(*x, since, until))
            .y_labels(Y_LABELS)
            .y_desc("USD")
            .y_label_formatter(&|y| format!("{y:.decimals$}"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        let xy = |p: &BudgetPoint, y: f64| (p.at.timestamp(), y);
        chart
            .draw_series(LineSeries::new(
                budget_line(points, until),
                BUDGET.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| xy(p, p.spend_usd)),
                SPEND.stroke_width(2),
            ))
            .map_err(err)?;
        // The latest reading as a dot: a line of one reading draws nothing.
        chart
            .draw_series(
                points
                    .last()
                    .map(|p| Circle::new(xy(p, p.spend_usd), 3, SPEND.filled())),
            )
            .map_err(err)?;
        let crossings: Vec<&BudgetPoint> = points
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                reached(p.spend_usd, p.budget_usd)
                    && (*i == 0 || !reached(points[i - 1].spend_usd, points[i - 1].budget_usd))
            })
            .map(|(_, p)| p)
            .collect();
        chart
            .draw_series(crossings.iter().map(|p| {
                EmptyElement::at(xy(p, p.spend_usd))
                    + Circle::new((0, 0), 5, BUDGET.filled())
                    + Text::new(
                        format!("exceeded {}", p.at.format("%b %d %H:%M")),
                        (8, -16),
                        (FONT, 13).into_font().color(&BUDGET),
                    )
            }))
            .map_err(err)?;
        if let Some((p, end, usd)) = projection {
            dashed.push([
                chart.backend_coord(&(p.at.timestamp(), p.spend_usd)),
                chart.backend_coord(&(end.timestamp(), usd)),
            ]);
        }
        root.present().map_err(err)?;
    }
    Ok(with_dashed_lines(svg, &dashed))
}

/// The budget line of `points`: the budget at each reading, and the last
/// one held on to `until`, the chart's end (a line of one reading would
/// draw nothing, and the budget stands to the window's end).
fn budget_line(points: &[BudgetPoint], until: DateTime<Utc>) -> Vec<(i64, f64)> {
    let mut line: Vec<(i64, f64)> = points
        .iter()
        .map(|p| (p.at.timestamp(), p.budget_usd))
        .collect();
    if let Some(last) = points.last().filter(|p| p.at < until) {
        line.push((until.timestamp(), last.budget_usd));
    }
    line
}

/// `svg` with a dashed spend-coloured line for each pair of pixel points,
/// drawn last.
fn with_dashed_lines(svg: String, lines: &[[(i32, i32); 2]]) -> String {
    let Some(close) = svg.rfind("</svg>") else {
        return svg;
    };
    let mut out = svg[..close].to_string();
    for [(x1, y1), (x2, y2)] in lines {
        out.push_str(&format!(
            "<polyline class=\"projection\" fill=\"none\" stroke=\"#{:02x}{:02x}{:02x}\" \
             stroke-width=\"2\" stroke-dasharray=\"8 5\" points=\"{x1},{y1} {x2},{y2}\"/>\n",
            SPEND.0, SPEND.1, SPEND.2
        ));
    }
    out.push_str(&svg[close..]);
    out
}

/// The height of the legend row of a budget chart, in pixels.
const LEGEND_HEIGHT: u32 = 24;

/// The most labels on the USD axis.
const Y_LABELS: usize = 11;

/// The legend of a budget chart, in one row: the budget and spend lines,
/// the mark of a crossing and, with a `projection`, its label, whose dashed
/// sample (in pixels of the whole chart) is returned to be drawn.
fn draw_budget_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    projection: bool,
) -> anyhow::Result<Option<[(i32, i32); 2]>> {
    let font = (FONT, 13).into_font().color(&BLACK);
    let y = LEGEND_HEIGHT as i32 / 2;
    let mut x = 80;
    for (label, color) in [("budget", BUDGET), ("spend", SPEND)] {
        area.draw(&PathElement::new(
            [(x, y), (x + 18, y)],
            color.stroke_width(2),
        ))
        .map_err(err)?;
        area.draw(&Text::new(label, (x + 24, y - 7), font.clone()))
            .map_err(err)?;
        x += 100;
    }
    area.draw(&Circle::new((x + 9, y), 4, BUDGET.filled()))
        .map_err(err)?;
    area.draw(&Text::new("budget reached", (x + 24, y - 7), font.clone()))
        .map_err(err)?;
    if !projection {
        return Ok(None);
    }
    x += 160;
    area.draw(&Text::new("projection", (x + 30, y - 7), font))
        .map_err(err)?;
    let (left, top) = area.get_base_pixel();
    Ok(Some([(left + x, top + y), (left + x + 24, top + y)]))
}

/// How many decimals the USD axis of `0..top` needs for its labels to
/// differ (0 for 0, 10, 20…; 1 for 0.0, 0.5, 1.0…).
fn usd_tick_decimals(top: f64) -> usize {
    (0..4)
        .find(|&d| usd_tick_labels(top, d).windows(2).all(|w| w[0] != w[1]))
        .unwrap_or(4)
}

/// The labels plotters puts on the USD axis of `0..top`, with `decimals`.
fn usd_tick_labels(top: f64, decimals: usize) -> Vec<String> {
    use plotters::coord::ranged1d::Ranged;
    use plotters::coord::types::RangedCoordf64;
    RangedCoordf64::from(0.0..top)
        .key_points(Y_LABELS)
        .iter()
        .map(|y| format!("{y:.decimals$}"))
        .collect()
}

/// One row per key over `[since, until)`: a red bar while keywarden held
/// it disabled, an amber bar while it held another setting (a seasonal
/// limit or reset).
pub fn timeline_chart(
    periods: &[Period],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut keys: Vec<(&str, &str)> = periods
        .iter()
        .map(|p| (p.key_hash.as_str(), p.key_name.as_str()))
        .collect();
    keys.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    keys.dedup_by(|a, b| a.0 == b.0);
    let rows = keys.len().max(1);
    let height = 150 + 30 * rows as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (names, plot) = root.split_horizontally(170);
        draw_timeline(&plot, &names, &keys, periods, since, until)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn draw_timeline(
    plot: &DrawingArea<SVGBackend<'_>, Shift>,
    names: &DrawingArea<SVGBackend<'_>, Shift>,
    keys: &[(&str, &str)],
    periods: &[Period],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<()> {
    // A blank band under the last key holds the legend.
    let rows = keys.len().max(1) as f64 + 1.6;
    let mut chart = ChartBuilder::on(plot)
        .caption("When keywarden held each key", (FONT, 20))
        .margin(12)
        .x_label_area_size(32)
        .build_cartesian_2d(since.timestamp()..until.timestamp(), rows..0.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(10)
        .x_label_formatter(&|x| time_label(*x, since, until))
        .y_labels(0)
        .disable_y_mesh()
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let row = |hash: &str| keys.iter().position(|k| k.0 == hash).unwrap_or(0) as f64;
    let bars = |disabled: bool| {
        periods
            .iter()
            .filter(move |p| (p.field == Field::Disabled) == disabled)
            .filter_map(move |p| {
                let (start, end) = p.clip(since, until)?;
                let y = row(&p.key_hash);
                let (top, bottom, color) = if disabled {
                    (y + 0.15, y + 0.5, DISABLED)
                } else {
                    (y + 0.5, y + 0.85, SETTING)
                };
                Some(Rectangle::new(
                    [(start.timestamp(), top), (end.timestamp(), bottom)],
                    color.filled(),
                ))
            })
    };
    chart
        .draw_series(bars(true))
        .map_err(err)?
        .label("held disabled")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], DISABLED.filled()));
    chart
        .draw_series(bars(false))
        .map_err(err)?
        .label("held under a rule's setting (limit, reset)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], SETTING.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK.mix(0.3))
        .background_style(WHITE.mix(0.9))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    let style = (FONT, 14).into_font().color(&BLACK);
    for (i, (_, name)) in keys.iter().enumerate() {
        let (_, y) = chart.backend_coord(&(since.timestamp(), i as f64 + 0.5));
        names
            .draw(&Text::new(
                crate::output::shorten(name, 20),
                (8, y - 7),
                style.clone(),
            ))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `points` attribute of each polyline of `svg` stroked `color`.
    fn polylines(svg: &str, color: RGBColor) -> Vec<&str> {
        let stroke = format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2);
        svg.split("<polyline")
            .skip(1)
            .map(|p| &p[..p.find("/>").unwrap_or(p.len())])
            .filter(|p| p.to_uppercase().contains(&stroke))
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .collect()
    }

    #[test]
    fn a_chart_of_one_reading_draws_the_budget_line_to_its_end_and_the_spend() {
        let at = |d: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-12-{d:02}T10:00:00Z"))
                .unwrap()
                .to_utc()
        };
        let reading = BudgetPoint {
            group: "team-monthly".into(),
            rule: "team-monthly".into(),
            window: "monthly".into(),
            at: at(2),
            spend_usd: 12.5,
            budget_usd: 50.0,
        };
        let svg = budget_chart("team-monthly", "monthly", &[reading], at(1), at(31), None).unwrap();
        // The first is the legend's sample.
        let budget = &polylines(&svg, BUDGET)[1..];
        assert_eq!(budget.len(), 1, "one budget line: {svg}");
        assert_eq!(
            budget[0].split_whitespace().count(),
            2,
            "from the reading to the chart's end: {}",
            budget[0]
        );
        let ys: Vec<&str> = budget[0]
            .split_whitespace()
            .filter_map(|xy| xy.split(',').nth(1))
            .collect();
        assert_eq!(ys[0], ys[1], "the budget is level: {}", budget[0]);
        let spend = format!("#{:02X}{:02X}{:02X}", SPEND.0, SPEND.1, SPEND.2);
        assert!(
            svg.split("<circle")
                .skip(1)
                .any(|c| c[..c.find("/>").unwrap_or(c.len())]
                    .to_uppercase()
                    .contains(&spend)),
            "no spend reading drawn: {svg}"
        );
    }

    #[test]
    fn a_daily_axis_labels_hours_and_a_monthly_one_dates() {
        let at = |d: u32, h: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-12-{d:02}T{h:02}:00:00Z"))
                .unwrap()
                .to_utc()
        };
        let noon = at(2, 12).timestamp();
        assert_eq!(time_label(noon, at(2, 0), at(3, 0)), "Dec 02 12:00");
        assert_eq!(time_label(noon, at(1, 0), at(31, 0)), "Dec 02");
    }

    #[test]
    fn usd_axis_labels_of_a_small_budget_are_distinct_and_have_decimals() {
        let decimals = usd_tick_decimals(2.3);
        assert!(decimals >= 1, "a 0-2.3 axis needs decimals");
        let labels = usd_tick_labels(2.3, decimals);
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels);
        assert!(labels.len() > 2, "{labels:?}");
    }

    #[test]
    fn usd_axis_labels_of_a_large_budget_are_whole_dollars() {
        assert_eq!(usd_tick_decimals(57.5), 0);
        assert_eq!(usd_tick_decimals(1150.0), 0);
    }
}
