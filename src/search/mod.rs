//! Multi-trial architecture search (`archc search`): the space a `.arch` file's choices
//! span ([`space`]) and the strategies that explore it ([`strategy`]); training-free
//! proxies that score an untrained candidate from one minibatch ([`proxies`]).

pub mod check;
pub mod cli;
pub mod evaluate;
pub mod export;
pub mod halving;
pub mod objective;
pub mod pareto;
pub mod plain_weights;
pub mod proxies;
pub mod rank;
pub mod run;
pub mod space;
pub mod strategy;
pub mod threads;
pub mod trials;
