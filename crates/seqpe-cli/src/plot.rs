//! PNG charts for the reports: a line chart (metric vs length/resolution, optional log-x) and a
//! heatmap grid (PE similarity maps), drawn with `plotters`.
//!
//! Text needs a TrueType font: the first of `$SEQPE_FONT`, DejaVu Sans or Liberation Sans that
//! exists is registered; without one the charts are drawn without text (the reports carry the
//! numbers in their markdown tables anyway).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a font once; `false` when none is available.
fn fonts_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let mut paths: Vec<String> = std::env::var("SEQPE_FONT").into_iter().collect();
        paths.extend(FONT_CANDIDATES.iter().map(|s| s.to_string()));
        for p in paths {
            if let Ok(bytes) = std::fs::read(&p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One line of a chart, with an optional band around it.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// `(low, high)` at each point (e.g. mean ± sd over seeds), shaded; empty: no band.
    pub band: Vec<(f64, f64)>,
}

impl Series {
    /// A line without a band.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            band: Vec::new(),
        }
    }
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draws `series` as lines with markers into a PNG. `log_x` uses a log2 x axis (lengths,
/// resolutions); `log_y` a log y axis (perplexity).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
) -> Result<()> {
    let text = fonts_ready();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| {
            let band = s
                .points
                .iter()
                .zip(&s.band)
                .flat_map(|(p, b)| [(p.0, b.0), (p.0, b.1)]);
            s.points.iter().copied().chain(band)
        })
        .collect();
    if all.is_empty() {
        return Err(anyhow!("no points to plot"));
    }
    let fx = |x: f64| if log_x { x.log2() } else { x };
    let fy = |y: f64| if log_y { y.max(1e-9).ln() } else { y };
    let (mut x0, mut x1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(fx(p.0)), b.max(fx(p.0)))
    });
    let (mut y0, mut y1) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(fy(p.1)), b.max(fy(p.1)))
    });
    let pad_x = ((x1 - x0) * 0.05).max(0.1);
    let pad_y = ((y1 - y0) * 0.08).max(1e-3);
    x0 -= pad_x;
    x1 += pad_x;
    y0 -= pad_y;
    y1 += pad_y;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(title, ("sans-serif", 24))
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|x| {
                if log_x {
                    format!("{:.0}", 2f64.powf(*x))
                } else {
                    format!("{x:.0}")
                }
            })
            .y_label_formatter(&|y| {
                if log_y {
                    format!("{:.1}", y.exp())
                } else {
                    format!("{y:.3}")
                }
            })
            .draw()?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .draw()?;
    }
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if s.band.len() == s.points.len() && !s.band.is_empty() {
            // the band: low edge left to right, then the high edge back
            let low = s
                .points
                .iter()
                .zip(&s.band)
                .map(|(p, b)| (fx(p.0), fy(b.0)));
            let high = s
                .points
                .iter()
                .zip(&s.band)
                .rev()
                .map(|(p, b)| (fx(p.0), fy(b.1)));
            chart.draw_series(std::iter::once(Polygon::new(
                low.chain(high).collect::<Vec<_>>(),
                color.mix(0.15).filled(),
            )))?;
        }
        let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (fx(x), fy(y))).collect();
        let line = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        if text {
            line.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// One panel of a heatmap figure: `values` row-major `[rows, cols]` in `[lo, hi]`.
pub struct Heatmap {
    pub title: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

/// Draws panels side by side (blue = `lo`, red = `hi`) into a PNG.
pub fn heatmaps(path: &Path, panels: &[Heatmap], lo: f32, hi: f32) -> Result<()> {
    let text = fonts_ready();
    let side = 420u32;
    let root =
        BitMapBackend::new(path, (side * panels.len() as u32, side + 40)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, panel) in areas.iter().zip(panels) {
        let mut builder = ChartBuilder::on(area);
        builder.margin(15);
        if text {
            builder.caption(&panel.title, ("sans-serif", 18));
        }
        let mut chart = builder.build_cartesian_2d(0..panel.cols, 0..panel.rows)?;
        chart.draw_series(
            (0..panel.rows)
                .flat_map(|r| (0..panel.cols).map(move |c| (r, c)))
                .map(|(r, c)| {
                    let v = panel.values[r * panel.cols + c];
                    let t = ((v - lo) / (hi - lo).max(1e-9)).clamp(0.0, 1.0) as f64;
                    let color = RGBColor(
                        (255.0 * t) as u8,
                        (80.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8,
                        (255.0 * (1.0 - t)) as u8,
                    );
                    // row 0 at the top
                    let y = panel.rows - 1 - r;
                    Rectangle::new([(c, y), (c + 1, y + 1)], color.filled())
                }),
        )?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut s = vec![Series::line(
            "a",
            vec![(64.0, 30.0), (128.0, 40.0), (2048.0, 400.0)],
        )];
        line_chart(&dir.join("l.png"), "t", "x", "y", &s, true, true).unwrap();
        s[0].band = vec![(25.0, 35.0), (30.0, 50.0), (300.0, 500.0)];
        line_chart(&dir.join("b.png"), "t", "x", "y", &s, true, true).unwrap();
        assert_eq!(&std::fs::read(dir.join("b.png")).unwrap()[1..4], b"PNG");
        heatmaps(
            &dir.join("h.png"),
            &[Heatmap {
                title: "h".into(),
                rows: 2,
                cols: 3,
                values: vec![0.0, 0.5, 1.0, 1.0, 0.5, 0.0],
            }],
            0.0,
            1.0,
        )
        .unwrap();
        let png = std::fs::read(dir.join("l.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(std::fs::metadata(dir.join("h.png")).unwrap().len() > 100);
        assert!(line_chart(&dir.join("e.png"), "t", "x", "y", &[], false, false).is_err());
    }
}
