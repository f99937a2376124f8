//! The operator deck's terminal front end over `deck-model`.
//!
//! The Elm architecture, as `deck-model` sets it up: [`keys`] maps a key event to an
//! [`keys::Action`] (pure), [`app::App::apply`] folds it into the model (the
//! `deck-model` view state plus the deck's own modes: search, help, confirm) and
//! returns an [`app::Effect`] when something must be done with the cluster;
//! [`render::draw`] turns the model and a built view into widgets (pure). [`run`]
//! owns the terminal, the tokio loop and the effects; [`term`] restores the
//! terminal on every way out.

pub mod app;
pub mod bookmarks;
pub mod cli;
pub mod keys;
pub mod render;
pub mod run;
pub mod term;
