//! The operator deck's terminal front end over `deck-model`.
//!
//! The Elm architecture, as `deck-model` sets it up: [`keys`] maps a key event to an
//! [`keys::Action`] (pure), [`app::App::apply`] folds it into the model (the
//! `deck-model` view state plus the deck's own modes: search, help, confirm) and
//! returns an [`app::Effect`] when something must be done with the cluster;
//! [`render::draw`] turns the model and a built view into widgets (pure).
//! [`commands`] runs what the command line asks for; [`session`] starts what the
//! deck looks at (and the headless `--once`); [`ui`] owns the terminal, the
//! tokio event loop and the effects; [`term`] restores the terminal on every way
//! out.

pub mod app;
pub mod bookmarks;
pub mod cli;
pub mod commands;
pub mod keys;
pub mod render;
pub mod session;
pub mod term;
pub mod ui;
