//! The stack on the Docker Engine: the containers the model asks for, the plan that turns what
//! runs into that, the one module that talks to the engine, and the project's secrets.

pub mod agent_image;
pub mod alerts;
pub mod containers;
pub mod docker;
pub mod plan;
pub mod reconcile;
pub mod secrets;
pub mod state;
