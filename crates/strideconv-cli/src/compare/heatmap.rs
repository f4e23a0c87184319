//! Drawing one heatmap over the (n, f) grid as a PNG: coloured cells, labelled axes, and a
//! key on the right (a colour bar or a legend).
//!
//! The axes are categorical (one column per n, one row per f, in grid order), so uneven
//! grids such as 1, 2, 3, 5, 7, ... draw as even cells. Text is drawn with a font embedded
//! in the binary: no system fonts are needed.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("font/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 760;
/// The plot area, in pixels: left, top, right, bottom.
const PLOT: (i32, i32, i32, i32) = (100, 78, 720, 680);
/// Left edge of the key.
const KEY_X: i32 = 762;

/// What one cell looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct Paint {
    /// Fill colour.
    pub colour: RGBColor,
    /// Text written in the cell when it fits.
    pub text: Option<String>,
}

/// A continuous colour scale: position 0 (bottom) to 1 (top).
#[derive(Clone, Debug)]
pub struct ColourBar {
    /// Written above the bar.
    pub title: String,
    /// The colour scale.
    pub scale: Scale,
    /// Tick positions in [0, 1] and their labels.
    pub ticks: Vec<(f64, String)>,
}

/// The key beside the plot.
#[derive(Clone, Debug)]
pub enum Key {
    /// A continuous scale.
    Bar(ColourBar),
    /// Named colours.
    Legend {
        /// Written above the entries.
        title: String,
        /// Colour and label of each entry.
        entries: Vec<(RGBColor, String)>,
    },
}

/// One figure.
#[derive(Clone, Debug)]
pub struct Heatmap {
    /// First line at the top.
    pub title: String,
    /// Second, smaller line.
    pub subtitle: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// Column values (input sizes n).
    pub xs: Vec<usize>,
    /// Row values (kernel sizes f), bottom to top.
    pub ys: Vec<usize>,
    /// `cells[i][j]` for `xs[i]`, `ys[j]`; `None` draws nothing (not part of the grid).
    pub cells: Vec<Vec<Option<Paint>>>,
    /// The key.
    pub key: Key,
    /// Colours of the cell states shared by every figure (skipped, refused, ...), drawn
    /// under the key.
    pub states: Vec<(RGBColor, String)>,
}

/// A colour scale given by evenly spaced anchor colours, interpolated linearly.
#[derive(Clone, Copy, Debug)]
pub struct Scale(&'static [(u8, u8, u8)]);

/// Viridis (perceptually uniform, readable in grey and by colour-blind readers), sampled at
/// nine points.
pub const VIRIDIS: Scale = Scale(&[
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
]);

/// Light yellow to dark red: good (light) to bad (dark).
pub const YELLOW_RED: Scale = Scale(&[
    (255, 255, 204),
    (255, 237, 160),
    (254, 217, 118),
    (254, 178, 76),
    (253, 141, 60),
    (252, 78, 42),
    (227, 26, 28),
    (177, 0, 38),
]);

impl Scale {
    /// The colour at `t` (clamped to [0, 1]).
    pub fn at(self, t: f64) -> RGBColor {
        let anchors = self.0;
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        let x = t * (anchors.len() - 1) as f64;
        let i = (x.floor() as usize).min(anchors.len() - 2);
        let w = x - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * w).round() as u8;
        let (a, b) = (anchors[i], anchors[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Black or white, whichever reads better on `c`.
pub fn text_colour(c: RGBColor) -> RGBColor {
    let luma = 0.299 * c.0 as f64 + 0.587 * c.1 as f64 + 0.114 * c.2 as f64;
    if luma > 140.0 {
        BLACK
    } else {
        WHITE
    }
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the embedded font cannot be read".to_string())
        })
        .clone()
}

/// The embedded font at `size` pixels, rounded down to an even size: plotters places each
/// glyph at `size / 2` plus its integer offset and truncates, so odd sizes set round glyphs
/// and dots a pixel off the baseline.
fn font(size: f64) -> FontDesc<'static> {
    (FAMILY, (size / 2.0).floor() * 2.0).into_font()
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn drawn<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("cannot draw: {e}"))
}

/// Draw `map` into a PNG at `path`.
pub fn draw(map: &Heatmap, path: &Path) -> Result<(), String> {
    register_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    drawn(root.fill(&WHITE))?;
    draw_titles(&root, map)?;
    draw_cells(&root, map)?;
    draw_axes(&root, map)?;
    let below = match &map.key {
        Key::Bar(bar) => draw_bar(&root, bar)?,
        Key::Legend { title, entries } => draw_legend(&root, title, entries, PLOT.1)?,
    };
    draw_legend(&root, "", &map.states, below + 24)?;
    drawn(root.present()).map_err(|e| format!("{e} ({})", path.display()))
}

fn draw_titles(root: &Area<'_>, map: &Heatmap) -> Result<(), String> {
    let centre = (WIDTH / 2) as i32;
    let top = Pos::new(HPos::Center, VPos::Top);
    drawn(root.draw(&Text::new(
        map.title.clone(),
        (centre, 12),
        font(24.0).color(&BLACK).pos(top),
    )))?;
    let grey = RGBColor(80, 80, 80);
    drawn(root.draw(&Text::new(
        map.subtitle.clone(),
        (centre, 44),
        font(16.0).color(&grey).pos(top),
    )))
}

/// Pixel edges of column `i` of `count` between `from` and `to`.
fn edges(i: usize, count: usize, from: i32, to: i32) -> (i32, i32) {
    let at = |k: usize| from + ((to - from) as f64 * k as f64 / count as f64).round() as i32;
    (at(i), at(i + 1))
}

fn draw_cells(root: &Area<'_>, map: &Heatmap) -> Result<(), String> {
    let (left, top, right, bottom) = PLOT;
    let (nx, ny) = (map.xs.len(), map.ys.len());
    for (i, column) in map.cells.iter().enumerate() {
        let (x0, x1) = edges(i, nx, left, right);
        for (j, paint) in column.iter().enumerate() {
            let Some(paint) = paint else { continue };
            // Row 0 is at the bottom.
            let (y1, y0) = edges(j, ny, bottom, top);
            drawn(root.draw(&Rectangle::new([(x0, y0), (x1, y1)], paint.colour.filled())))?;
            if let Some(text) = &paint.text {
                draw_cell_text(root, text, paint.colour, (x0, y0, x1, y1))?;
            }
        }
    }
    let border = RGBColor(60, 60, 60);
    drawn(root.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        border.stroke_width(1),
    )))
}

fn draw_cell_text(
    root: &Area<'_>,
    text: &str,
    fill: RGBColor,
    (x0, y0, x1, y1): (i32, i32, i32, i32),
) -> Result<(), String> {
    let size = ((y1 - y0) as f64 * 0.45).min(14.0);
    if size < 8.0 {
        return Ok(());
    }
    let (w, _) = drawn(root.estimate_text_size(text, &font(size).color(&BLACK)))?;
    if w as i32 > x1 - x0 - 4 {
        return Ok(());
    }
    let colour = text_colour(fill);
    let style = font(size)
        .color(&colour)
        .pos(Pos::new(HPos::Center, VPos::Center));
    drawn(root.draw(&Text::new(
        text.to_string(),
        ((x0 + x1) / 2, (y0 + y1) / 2),
        style,
    )))
}

/// Every `step`-th label, so that labels do not overlap.
fn label_step(count: usize, room: i32, label_size: i32) -> usize {
    let per = (room as f64 / count.max(1) as f64).max(1.0);
    ((label_size as f64 / per).ceil() as usize).max(1)
}

fn draw_axes(root: &Area<'_>, map: &Heatmap) -> Result<(), String> {
    let (left, top, right, bottom) = PLOT;
    let tick_font = font(14.0);
    let widest = map
        .xs
        .iter()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1) as i32;
    let x_step = label_step(map.xs.len(), right - left, widest * 9 + 8);
    for (i, n) in map.xs.iter().enumerate().filter(|(i, _)| i % x_step == 0) {
        let (x0, x1) = edges(i, map.xs.len(), left, right);
        let style = tick_font
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        drawn(root.draw(&Text::new(
            n.to_string(),
            ((x0 + x1) / 2, bottom + 6),
            style,
        )))?;
    }
    let y_step = label_step(map.ys.len(), bottom - top, 17);
    for (j, f) in map.ys.iter().enumerate().filter(|(j, _)| j % y_step == 0) {
        let (y1, y0) = edges(j, map.ys.len(), bottom, top);
        let style = tick_font
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        drawn(root.draw(&Text::new(f.to_string(), (left - 6, (y0 + y1) / 2), style)))?;
    }
    let axis_font = font(18.0);
    let x_style = axis_font
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    drawn(root.draw(&Text::new(
        map.x_label.clone(),
        ((left + right) / 2, bottom + 34),
        x_style,
    )))?;
    let y_style = axis_font
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    drawn(root.draw(&Text::new(
        map.y_label.clone(),
        (18, (top + bottom) / 2),
        y_style,
    )))
}

/// Draw the colour bar; returns the y just below its lowest label.
fn draw_bar(root: &Area<'_>, bar: &ColourBar) -> Result<i32, String> {
    let (x0, x1) = (KEY_X, KEY_X + 28);
    let (top, bottom) = (PLOT.1 + 30, PLOT.1 + 390);
    let title_style = font(16.0)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Top));
    drawn(root.draw(&Text::new(bar.title.clone(), (KEY_X, PLOT.1), title_style)))?;
    for y in top..bottom {
        let t = (bottom - 1 - y) as f64 / (bottom - 1 - top).max(1) as f64;
        drawn(root.draw(&Rectangle::new(
            [(x0, y), (x1, y + 1)],
            bar.scale.at(t).filled(),
        )))?;
    }
    drawn(root.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK.stroke_width(1),
    )))?;
    for (t, label) in &bar.ticks {
        let y = bottom - 1 - (t * (bottom - 1 - top) as f64).round() as i32;
        drawn(root.draw(&PathElement::new(
            vec![(x1, y), (x1 + 6, y)],
            BLACK.stroke_width(1),
        )))?;
        let style = font(14.0)
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        drawn(root.draw(&Text::new(label.clone(), (x1 + 10, y), style)))?;
    }
    Ok(bottom + 10)
}

/// Draw swatches with labels from `top`; returns the y below the last one.
fn draw_legend(
    root: &Area<'_>,
    title: &str,
    entries: &[(RGBColor, String)],
    top: i32,
) -> Result<i32, String> {
    let mut y = top;
    if !title.is_empty() {
        let style = font(16.0)
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Top));
        drawn(root.draw(&Text::new(title.to_string(), (KEY_X, y), style)))?;
        y += 30;
    }
    for (colour, label) in entries {
        drawn(root.draw(&Rectangle::new(
            [(KEY_X, y), (KEY_X + 18, y + 18)],
            colour.filled(),
        )))?;
        drawn(root.draw(&Rectangle::new(
            [(KEY_X, y), (KEY_X + 18, y + 18)],
            RGBColor(90, 90, 90).stroke_width(1),
        )))?;
        let style = font(14.0)
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        drawn(root.draw(&Text::new(label.clone(), (KEY_X + 26, y + 9), style)))?;
        y += 26;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_ends_are_its_anchors() {
        assert_eq!(VIRIDIS.at(0.0), RGBColor(68, 1, 84));
        assert_eq!(VIRIDIS.at(1.0), RGBColor(253, 231, 37));
        assert_eq!(VIRIDIS.at(7.0), VIRIDIS.at(1.0));
        assert_eq!(VIRIDIS.at(f64::NAN), VIRIDIS.at(0.0));
    }

    #[test]
    fn edges_tile_the_range() {
        let (a, b) = edges(0, 3, 0, 100);
        let (c, d) = edges(2, 3, 0, 100);
        assert_eq!((a, d), (0, 100));
        assert!(b < c);
    }

    #[test]
    fn labels_thin_out_when_crowded() {
        assert_eq!(label_step(10, 600, 40), 1);
        assert_eq!(label_step(100, 600, 40), 7);
    }
}
