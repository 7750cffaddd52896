//! Multi-trial architecture search (`archc search`): the space a `.arch` file's choices
//! span ([`space`]) and the strategies that explore it ([`strategy`]); training-free
//! proxies that score an untrained candidate from one minibatch ([`proxies`]).

pub mod check;
pub mod proxies;
pub mod space;
pub mod strategy;
