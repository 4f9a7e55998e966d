//! Dialogs over the screens: the engine's questions and the start dialog. Each owns its
//! state, handles its keys (`update`) and draws itself.

pub mod prompt;
pub mod start;
