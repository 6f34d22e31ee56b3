// SPDX-License-Identifier: GPL-2.0

//! The PNG chart of `pacifica bench-report`: cycles per operation on a
//! log scale, one group of bars per benchmark, one bar per configuration,
//! the min-max range of the repetitions as a whisker on each bar.
//!
//! Drawn by `plotters`' bitmap backend; text goes through `ab_glyph` with
//! DejaVu Sans from the `dejavu` crate, registered as "sans-serif", so
//! nothing is loaded from the system (no fontconfig, no font files).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::report::{benchmark_names, find, Results};

/// Bar colours, by configuration in `CONFIGS` order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
];

/// Draws the chart of `results` into the PNG file `path`.
pub fn draw(results: &Results, path: &Path) -> Result<(), String> {
    draw_inner(results, path).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn draw_inner(results: &Results, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    // Registering twice (two charts in one process) only replaces the font.
    let _ =
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    let names = benchmark_names(results);
    let configs: Vec<&str> = results.configs.iter().map(|c| c.config.as_str()).collect();
    let values: Vec<f64> = results
        .configs
        .iter()
        .flat_map(|c| c.benchmarks.iter())
        .filter_map(|b| b.cycles_per_op.map(|s| s.max))
        .collect();
    let top = values.iter().copied().fold(10.0, f64::max) * 3.0;
    let bottom = values
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(top, f64::min)
        .max(1.0)
        / 3.0;

    let width = (names.len() as u32 * 110 + 160).max(800);
    let root = BitMapBackend::new(path, (width, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Pacifica nanobenchmarks: guest cycles per operation (log scale)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..names.len() as f64, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("cycles per operation")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;

    let n = configs.len().max(1) as f64;
    let slot = 0.8 / n;
    for (j, config) in configs.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let bars: Vec<(f64, f64, f64, f64)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let s = find(results, config, name)?.cycles_per_op?;
                Some((i as f64 + 0.1 + j as f64 * slot, s.median, s.min, s.max))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|(x, median, _, _)| {
                Rectangle::new([(*x, bottom), (*x + slot * 0.9, *median)], colour.filled())
            }))?
            .label(*config)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
        chart.draw_series(bars.iter().map(|(x, _, min, max)| {
            let mid = x + slot * 0.45;
            PathElement::new(vec![(mid, *min), (mid, *max)], BLACK)
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;

    // Benchmark names under their groups.
    let style = TextStyle::from(("sans-serif", 14).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ),
    );
    for (i, name) in names.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, bottom));
        root.draw_text(name, &style, (x, y + 8))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::report::merge;
    use super::super::{BenchResult, ConfigResult, Spread};
    use super::*;

    #[test]
    fn a_chart_is_drawn_with_text() {
        let s = |v| {
            Some(Spread {
                median: v,
                min: v * 0.9,
                max: v * 1.1,
            })
        };
        let config = |name: &str, k: f64| ConfigResult {
            config: name.into(),
            counter_source: String::new(),
            scale: 1.0,
            repetitions: 3,
            benchmarks: ["syscall", "pgfault"]
                .iter()
                .map(|b| BenchResult {
                    name: b.to_string(),
                    ops: 10,
                    runs: Vec::new(),
                    cycles_per_op: s(k * 100.0),
                    exits_per_op: s(1.0),
                    user_exits_per_op: s(0.0),
                    host_intr_exits_per_op: s(0.0),
                })
                .collect(),
        };
        let results = merge(vec![
            config("pacifica-npt", 1.0),
            config("kvm-shadow", 30.0),
        ]);
        let path = std::env::temp_dir().join(format!("pacifica-chart-{}.png", std::process::id()));
        draw(&results, &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 2000, "{} bytes", png.len());
    }
}
