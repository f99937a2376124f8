//! Rendering: the model and a built view in, widgets out. No side effects, so
//! every screen can be drawn into ratatui's `TestBackend` and compared.

use deck_model::{Align, Cell, Msg, SortDir, Style, Tab, View};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style as TuiStyle};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell as TuiCell, Clear, Paragraph, Row, Table, TableState, Wrap,
};

use crate::app::{App, Outcome};
use crate::keys::{self, Action, KEYMAP, Mode, Scope};

/// Below this width or height the deck shows only a "too small" message.
pub const MIN_WIDTH: u16 = 24;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 7;
/// From this width an aside table sits beside the main one, below it otherwise.
pub const ASIDE_BESIDE: u16 = 120;

/// Where each part of the screen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// Status bar.
    pub status: Rect,
    /// Tab bar.
    pub tabs: Rect,
    /// Page title, sort, search and notice.
    pub title: Rect,
    /// The main table (header included).
    pub main: Rect,
    /// The aside table, if the page has one.
    pub aside: Option<Rect>,
    /// Keys, toasts, hints.
    pub footer: Rect,
}

/// Splits `area` (at least [`MIN_WIDTH`] x [`MIN_HEIGHT`]).
pub fn areas(area: Rect, has_aside: bool) -> Areas {
    let [status, tabs, title, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (main, aside) = if !has_aside {
        (body, None)
    } else if area.width >= ASIDE_BESIDE {
        let [m, a] = Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
            .areas(body);
        (m, Some(a))
    } else {
        let [m, a] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(body);
        (m, Some(a))
    };
    Areas { status, tabs, title, main, aside, footer }
}

/// Visible body rows of the main table for a terminal of `width` x `height`.
pub fn body_rows(width: u16, height: u16, has_aside: bool) -> usize {
    let a = areas(Rect::new(0, 0, width, height), has_aside);
    usize::from(a.main.height.saturating_sub(1)).max(1)
}

/// Maps a semantic style to terminal attributes.
pub fn style(s: Style, color: bool) -> TuiStyle {
    let base = TuiStyle::default();
    if !color {
        return match s {
            Style::Dim => base.add_modifier(Modifier::DIM),
            Style::Err | Style::Accent => base.add_modifier(Modifier::BOLD),
            Style::Normal | Style::Ok | Style::Warn => base,
        };
    }
    match s {
        Style::Normal => base,
        Style::Ok => base.fg(Color::Green),
        Style::Warn => base.fg(Color::Yellow),
        Style::Err => base.fg(Color::Red).add_modifier(Modifier::BOLD),
        Style::Dim => base.fg(Color::DarkGray),
        Style::Accent => base.fg(Color::Cyan),
    }
}

fn span(cell: &Cell, color: bool) -> Span<'static> {
    Span::styled(cell.text.clone(), style(cell.style, color))
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App, view: &View, status: &[Cell]) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!("terminal too small ({}x{}); q quits", area.width, area.height);
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let color = app.settings.color;
    let a = areas(area, view.aside.is_some());
    frame.render_widget(status_bar(&fit_status(status, area.width), color), a.status);
    frame.render_widget(tab_bar(view.tab, view.detail.is_some(), a.tabs.width, color), a.tabs);
    frame.render_widget(title_line(app, view, color), a.title);
    draw_table(frame, &view.table, a.main, color, true);
    if let (Some(aside), Some(rect)) = (&view.aside, a.aside) {
        let block = Block::default()
            .borders(if rect.x > a.main.x { Borders::LEFT } else { Borders::TOP })
            .title(Span::styled(aside.title.clone(), style(Style::Accent, color)));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        draw_table(frame, &aside.table, inner, color, false);
    }
    frame.render_widget(footer(app, view.tab, color), a.footer);
    match app.mode {
        Mode::Help => draw_help(frame, app.help_scroll, color),
        Mode::Confirm | Mode::Sending => draw_confirm(frame, app, color),
        Mode::Prompt => draw_prompt(frame, app, color),
        Mode::Result => draw_result(frame, app, color),
        Mode::Picker => draw_picker(frame, app, color),
        Mode::Normal | Mode::Search => {}
    }
}

/// The status bar's cells for `width` columns: when they do not fit, the quiet
/// ones go first (the version, then dim cells such as "not frozen", left to
/// right), so health counts, the freeze banner and warnings stay visible.
pub fn fit_status(cells: &[Cell], width: u16) -> Vec<Cell> {
    let version = Cell::new(concat!("v", env!("CARGO_PKG_VERSION"))).styled(Style::Dim);
    let mut out: Vec<Cell> = cells.iter().cloned().chain(std::iter::once(version)).collect();
    // " DECK " plus " │ " before each cell.
    let len = |cells: &[Cell]| 6 + cells.iter().map(|c| c.text.chars().count() + 3).sum::<usize>();
    while len(&out) > usize::from(width) {
        let victim = if out.last().is_some_and(|c| c.text.starts_with('v')) {
            Some(out.len() - 1)
        } else {
            out.iter().position(|c| c.style == Style::Dim)
        };
        match victim {
            Some(i) => {
                out.remove(i);
            }
            None => break,
        }
    }
    out
}

fn status_bar(cells: &[Cell], color: bool) -> Paragraph<'static> {
    let sep = Span::styled(" │ ", style(Style::Dim, color));
    let mut spans = vec![Span::styled(
        " DECK ",
        if color {
            TuiStyle::default().fg(Color::Black).bg(Color::Green).add_modifier(Modifier::BOLD)
        } else {
            TuiStyle::default().add_modifier(Modifier::REVERSED)
        },
    )];
    for c in cells {
        spans.push(sep.clone());
        spans.push(span(c, color));
    }
    Paragraph::new(Line::from(spans))
}

/// The key that jumps to `tab` (from the keymap).
pub fn tab_key(tab: Tab) -> Option<&'static str> {
    KEYMAP.iter().find(|b| b.action == Action::Msg(Msg::Tab(tab))).map(|b| b.label)
}

/// The tab bar's labels and the first one shown: the bar scrolls so the current
/// tab is visible when it is narrow.
fn tab_labels(current: Tab, width: u16) -> (Vec<String>, usize) {
    let labels: Vec<String> = Tab::ALL
        .iter()
        .map(|t| format!(" {}:{} ", tab_key(*t).unwrap_or(" "), t.title()))
        .collect();
    let cur = current.index();
    let width = usize::from(width);
    let mut start = 0;
    while start < cur
        && labels[start..=cur].iter().map(|l| l.chars().count()).sum::<usize>() + 2 > width
    {
        start += 1;
    }
    (labels, start)
}

/// The tab under column `x` of the tab bar (for mouse clicks).
pub fn tab_at(current: Tab, width: u16, x: u16) -> Option<Tab> {
    let (labels, start) = tab_labels(current, width);
    let mut left = usize::from(start > 0);
    for (i, label) in labels.iter().enumerate().skip(start) {
        let right = left + label.chars().count();
        if (left..right).contains(&usize::from(x)) {
            return Some(Tab::ALL[i]);
        }
        left = right;
    }
    None
}

fn tab_bar(current: Tab, detail: bool, width: u16, color: bool) -> Paragraph<'static> {
    let (labels, start) = tab_labels(current, width);
    let cur = current.index();
    let mut spans = Vec::new();
    if start > 0 {
        spans.push(Span::styled("‹", style(Style::Dim, color)));
    }
    for (i, label) in labels.iter().enumerate().skip(start) {
        let s = if i == cur {
            let s = TuiStyle::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
            if color && !detail { s.fg(Color::Green) } else { s }
        } else {
            style(Style::Dim, color)
        };
        spans.push(Span::styled(label.clone(), s));
    }
    Paragraph::new(Line::from(spans))
}

fn title_line(app: &App, view: &View, color: bool) -> Paragraph<'static> {
    let t = &view.table;
    let mut spans = vec![Span::styled(
        view.title.clone(),
        style(Style::Accent, color).add_modifier(Modifier::BOLD),
    )];
    if let Some(sort) = t.sort
        && let Some(col) = t.columns.get(sort.column)
    {
        let arrow = if sort.dir == SortDir::Asc { "▲" } else { "▼" };
        spans.push(Span::raw(format!("  sort {}{arrow}", col.name)));
    }
    let search = app.state.current().search();
    if app.mode == Mode::Search {
        spans.push(Span::styled(format!("  /{}█", app.query), style(Style::Warn, color)));
    } else if !search.is_empty() {
        spans.push(Span::styled(format!("  /{search}"), style(Style::Warn, color)));
    }
    if t.follow {
        spans.push(Span::styled("  follow", style(Style::Dim, color)));
    }
    if t.total > 0 {
        let pos = t.selected.map_or(0, |p| p + 1);
        spans.push(Span::styled(format!("  {pos}/{}", t.total), style(Style::Dim, color)));
    }
    if let Some(n) = &view.notice {
        spans.push(Span::raw("  "));
        spans.push(span(n, color));
    }
    Paragraph::new(Line::from(spans))
}

fn draw_table(
    frame: &mut Frame<'_>,
    table: &deck_model::Table,
    area: Rect,
    color: bool,
    main: bool,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let cols = fit_columns(table, area.width);
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|&(i, w)| {
            if Some(i) == stretch_column(table) {
                Constraint::Min(w)
            } else {
                Constraint::Length(w)
            }
        })
        .collect();
    let header = Row::new(cols.iter().map(|&(i, _)| {
        let c = &table.columns[i];
        let mut name = c.name.to_owned();
        if let Some(s) = table.sort.filter(|s| s.column == i) {
            name.push(if s.dir == SortDir::Asc { '▲' } else { '▼' });
        }
        align(Line::from(name), c.align)
    }))
    .style(
        TuiStyle::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED).fg(if color {
            Color::Green
        } else {
            Color::Reset
        }),
    );
    let rows = table.rows.iter().map(|r| {
        Row::new(cols.iter().filter_map(|&(i, _)| {
            let cell = r.cells.get(i)?;
            Some(align(Line::from(span(cell, color)), table.columns[i].align))
        }))
    });
    let mut widget = Table::new(rows, widths).header(header).column_spacing(1);
    if main {
        widget = widget.row_highlight_style(TuiStyle::default().add_modifier(Modifier::REVERSED));
    }
    let mut state = TableState::default();
    if main {
        state.select(table.selected_in_window());
    }
    if table.rows.is_empty() {
        let empty = if table.unfiltered > 0 { "no rows match" } else { "nothing yet" };
        frame.render_widget(widget.clone(), area);
        if area.height > 1 {
            let msg = Rect { y: area.y + 1, height: 1, ..area };
            frame.render_widget(Paragraph::new(empty).style(style(Style::Dim, color)), msg);
        }
        return;
    }
    frame.render_stateful_widget(widget, area, &mut state);
}

/// What the stretching column needs before other columns are left out.
const STRETCH_MIN: usize = 24;

/// The last column takes the rest of the width when it holds text.
/// Only when it is the last column, so extra space never opens a gap between
/// columns.
fn stretch_column(table: &deck_model::Table) -> Option<usize> {
    let last = table.columns.len().checked_sub(1)?;
    (table.columns[last].align == Align::Left).then_some(last)
}

/// The columns to show and their widths: each as wide as its header and the
/// widest visible cell (capped at the column's preferred width, except for the
/// stretching column); when they still do not fit, trailing columns other than
/// the stretching one are left out rather than squeezing every column.
pub fn fit_columns(table: &deck_model::Table, width: u16) -> Vec<(usize, u16)> {
    let stretch = stretch_column(table);
    let mut cols: Vec<(usize, u16)> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let header =
                c.name.chars().count() + usize::from(table.sort.is_some_and(|s| s.column == i));
            let content = table
                .rows
                .iter()
                .filter_map(|r| r.cells.get(i))
                .map(|c| c.text.chars().count())
                .max();
            let want = header.max(content.unwrap_or(0));
            let cap = usize::from(c.width).max(header);
            // The stretching column asks for little and takes what is left.
            let w =
                if Some(i) == stretch { want.min(STRETCH_MIN).max(header) } else { want.min(cap) };
            (i, u16::try_from(w).unwrap_or(u16::MAX).max(1))
        })
        .collect();
    let total = |cols: &[(usize, u16)]| -> usize {
        cols.iter().map(|(_, w)| usize::from(*w) + 1).sum::<usize>().saturating_sub(1)
    };
    while cols.len() > 1 && total(&cols) > usize::from(width) {
        match cols.iter().rposition(|(i, _)| Some(*i) != stretch) {
            Some(p) => {
                cols.remove(p);
            }
            None => break,
        }
    }
    cols
}

fn align(line: Line<'static>, a: Align) -> TuiCell<'static> {
    TuiCell::from(match a {
        Align::Left => line,
        Align::Right => line.alignment(Alignment::Right),
    })
}

fn footer(app: &App, tab: Tab, color: bool) -> Paragraph<'static> {
    if let Some(t) = &app.toast {
        return Paragraph::new(Line::from(span(&t.cell, color)));
    }
    let key = style(Style::Accent, color).add_modifier(Modifier::BOLD);
    let dim = style(Style::Dim, color);
    let mut spans = Vec::new();
    for b in keys::footer(app.mode, tab) {
        spans.push(Span::styled(b.label.to_owned(), key));
        spans.push(Span::styled(format!(" {} ", short(b.help)), dim));
    }
    if let Some(hint) = &app.settings.hint {
        spans.push(Span::styled(format!("│ {hint}"), style(Style::Warn, color)));
    }
    Paragraph::new(Line::from(spans))
}

/// The first words of a help line, for the footer.
fn short(help: &str) -> &str {
    help.split(['(', '/', ',']).next().unwrap_or(help).trim_end()
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help overlay's lines (one per binding of normal mode).
pub fn help_lines() -> Vec<(String, String)> {
    keys::help_bindings()
        .map(|b| {
            let help = match b.scope {
                Scope::Tab(t) => format!("{} ({} only)", b.help, t.title()),
                Scope::Global | Scope::Mode(_) => b.help.to_owned(),
            };
            (b.label.to_owned(), help)
        })
        .collect()
}

fn draw_help(frame: &mut Frame<'_>, scroll: usize, color: bool) {
    let lines = help_lines();
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(frame.area(), 56, height);
    let inner_h = usize::from(rect.height.saturating_sub(2));
    let scroll = scroll.min(lines.len().saturating_sub(inner_h));
    let key = style(Style::Accent, color).add_modifier(Modifier::BOLD);
    let text: Vec<Line<'static>> = lines
        .into_iter()
        .map(|(k, h)| Line::from(vec![Span::styled(format!("{k:>10}  "), key), Span::raw(h)]))
        .collect();
    let more = if scroll + inner_h < text.len() { " ↓ more " } else { "" };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" keys (j/k scroll, Esc close) ")
        .title_bottom(more);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text).block(block).scroll((u16::try_from(scroll).unwrap_or(u16::MAX), 0)),
        rect,
    );
}

fn draw_confirm(frame: &mut Frame<'_>, app: &App, color: bool) {
    let Some(pending) = &app.pending else { return };
    let mut lines: Vec<Line<'static>> =
        pending.describe().iter().map(|c| Line::from(span(c, color))).collect();
    lines.push(Line::raw(""));
    if app.mode == Mode::Sending {
        let n = pending.targets.len();
        lines.push(Line::styled(
            format!("signing and sending to {n} node{} ...", if n == 1 { "" } else { "s" }),
            style(Style::Warn, color),
        ));
    } else {
        lines.push(Line::from(vec![
            Span::styled("y/Enter", style(Style::Accent, color).add_modifier(Modifier::BOLD)),
            Span::raw(" sign and send   "),
            Span::styled("n/Esc", style(Style::Accent, color).add_modifier(Modifier::BOLD)),
            Span::raw(" cancel"),
        ]));
    }
    let border = if pending.is_ice() { Style::Err } else { Style::Warn };
    let rect = centered(frame.area(), 72, u16::try_from(lines.len() + 2).unwrap_or(u16::MAX));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style(border, color))
        .title(if pending.is_ice() { " confirm ICE action " } else { " confirm " });
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}

fn draw_prompt(frame: &mut Frame<'_>, app: &App, color: bool) {
    let Some(prompt) = &app.prompt else { return };
    let key = style(Style::Accent, color).add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!("{}: ", prompt.spec.label)),
            Span::styled(format!("{}█", prompt.input), style(Style::Warn, color)),
        ]),
        Line::styled("like 30s, 5m, 1h30m (a bare number is seconds)", style(Style::Dim, color)),
    ];
    if let Some(e) = &prompt.error {
        lines.push(Line::styled(format!("not a duration: {e}"), style(Style::Err, color)));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("Enter", key),
        Span::raw(" review   "),
        Span::styled("Esc", key),
        Span::raw(" cancel"),
    ]));
    let rect = centered(frame.area(), 60, u16::try_from(lines.len() + 2).unwrap_or(u16::MAX));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style(Style::Warn, color))
        .title(format!(" {:?} ", prompt.verb).to_lowercase());
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), rect);
}

/// The result dialog's lines: the summary, then one line per node (see
/// [`Outcome::lines`]: everything a node said comes escaped and capped).
pub fn result_lines(outcome: &Outcome) -> Vec<Cell> {
    outcome.lines()
}

fn draw_result(frame: &mut Frame<'_>, app: &App, color: bool) {
    let Some(outcome) = &app.outcome else { return };
    let cells = result_lines(outcome);
    let ok = cells.first().is_some_and(|c| c.style == Style::Ok);
    // Keep room for the border and the key line.
    let room = usize::from(frame.area().height.saturating_sub(4)).max(1);
    let width = frame.area().width.min(96);
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let mut lines: Vec<Line<'static>> = cells
        .iter()
        .take(room)
        .map(|c| {
            // Long reasons are cut with an ellipsis rather than at the border.
            let mut text: String = c.text.chars().take(inner).collect();
            if c.text.chars().count() > inner {
                text.pop();
                text.push('…');
            }
            Line::styled(text, style(c.style, color))
        })
        .collect();
    if cells.len() > room {
        let more = cells.len() - room + 1;
        lines.pop();
        lines.push(Line::styled(format!("... and {more} more"), style(Style::Dim, color)));
    }
    lines.push(Line::from(vec![
        Span::styled("Enter/Esc", style(Style::Accent, color).add_modifier(Modifier::BOLD)),
        Span::raw(" close (the outcome is in AUDIT)"),
    ]));
    let rect = centered(frame.area(), 96, u16::try_from(lines.len() + 2).unwrap_or(u16::MAX));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style(if ok { Style::Ok } else { Style::Err }, color))
        .title(" result ");
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

fn draw_picker(frame: &mut Frame<'_>, app: &App, color: bool) {
    let Some((picker, items)) = &app.picker else { return };
    let shown = picker.filtered(items);
    let selected = picker.selected_index(items);
    let room = usize::from(frame.area().height.saturating_sub(5)).max(1);
    // Keep the highlighted row in view.
    let first = selected.map_or(0, |s| s.saturating_sub(room.saturating_sub(1)));
    let mut lines = vec![Line::from(vec![
        Span::raw("cluster: "),
        Span::styled(format!("{}█", picker.query), style(Style::Warn, color)),
    ])];
    if shown.is_empty() {
        lines.push(Line::styled("no bookmark matches", style(Style::Dim, color)));
    }
    for (i, b) in shown.iter().enumerate().skip(first).take(room) {
        let text = format!("{:<16} {}", deck_model::text::clean(&b.name, 32), b.address);
        let s = if Some(i) == selected {
            TuiStyle::default().add_modifier(Modifier::REVERSED)
        } else {
            TuiStyle::default()
        };
        lines.push(Line::styled(text, s));
    }
    let rect = centered(frame.area(), 64, u16::try_from(lines.len() + 2).unwrap_or(u16::MAX));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style(Style::Accent, color))
        .title(" switch cluster (Enter attach, Esc cancel) ");
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
