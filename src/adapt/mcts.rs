//! Monte Carlo tree search over chains, after PoLar's discovery search.
//!
//! The root is the trained order and is evaluated first. Each simulation descends from
//! the root: at a node with moves not yet tried it expands one, drawn at random among
//! them, and proposes that chain; at a node whose moves are all tried it goes on to a
//! child, drawn at random with probability `epsilon`, else the one of highest
//!
//! `mean - length_penalty * len / depth + sqrt(2 ln(N_root + 1) / n)`
//!
//! (`mean` the average backed-up score, `n` the child's visits). The score of an
//! evaluated chain is backed up, raw, along the path to the root. A chain already in
//! the tree is never proposed again (moves reaching it from another node are dropped);
//! a descent that ends at a node with no moves left and no children counts as a
//! simulation and backs up that node's own score again.
//!
//! Contract: see [`super::search`]; at most `simulations` chains are proposed (the root
//! included), one per proposal.

use super::chain::{Chain, Space};
use super::search::{objective, Rng, Search};
use std::collections::HashSet;

struct Node {
    chain: Chain,
    parent: Option<usize>,
    children: Vec<usize>,
    /// Moves not yet expanded (`None`: not generated yet).
    untried: Option<Vec<Chain>>,
    visits: u64,
    total: f64,
    /// The node's own score, once evaluated.
    score: Option<f64>,
}

pub struct Mcts {
    space: Space,
    simulations: usize,
    penalty: f64,
    epsilon: f64,
    rng: Rng,
    nodes: Vec<Node>,
    seen: HashSet<Chain>,
    /// Simulations done (evaluations and dead-end descents).
    done: usize,
    /// The node whose chain was proposed and awaits its score.
    waiting: Option<usize>,
    evaluated: Vec<(Chain, f64)>,
}

/// Descents in a row that may end at dead ends before the search stops.
const DEAD_ENDS: usize = 1_000;

impl Mcts {
    pub fn new(space: Space, simulations: usize, penalty: f64, epsilon: f64, seed: u64) -> Mcts {
        let root = Chain::trained(space.depth);
        let node = Node {
            chain: root.clone(),
            parent: None,
            children: Vec::new(),
            untried: None,
            visits: 0,
            total: 0.0,
            score: None,
        };
        Mcts {
            space,
            simulations,
            penalty,
            epsilon,
            rng: Rng::new(seed),
            nodes: vec![node],
            seen: HashSet::from([root]),
            done: 0,
            waiting: None,
            evaluated: Vec::new(),
        }
    }

    /// The UCB value of child `c` (see the module docs).
    fn ucb(&self, c: usize) -> f64 {
        let n = &self.nodes[c];
        let root = self.nodes[0].visits as f64;
        let mean = n.total / n.visits.max(1) as f64;
        let explore = (2.0 * (root + 1.0).ln() / n.visits.max(1) as f64).sqrt();
        objective(mean, &n.chain, self.penalty, self.space.depth) + explore
    }

    /// The untried moves of `node`, generated on first use, without the chains added
    /// to the tree since (taken out of the node; [`Mcts::descend`] puts the rest back).
    fn take_untried(&mut self, node: usize) -> Vec<Chain> {
        let mut moves = match self.nodes[node].untried.take() {
            Some(m) => m,
            None => self.space.moves(&self.nodes[node].chain, node == 0),
        };
        moves.retain(|c| !self.seen.contains(c));
        moves
    }

    /// One descent: the node to evaluate, or `Err(node)` for a dead end at `node`.
    fn descend(&mut self) -> Result<usize, usize> {
        let mut node = 0;
        loop {
            let mut untried = self.take_untried(node);
            if !untried.is_empty() {
                let pick = self.rng.below(untried.len());
                let chain = untried.swap_remove(pick);
                self.nodes[node].untried = Some(untried);
                return Ok(self.add_child(node, chain));
            }
            self.nodes[node].untried = Some(untried);
            let children = &self.nodes[node].children;
            if children.is_empty() {
                return Err(node);
            }
            node = if self.rng.unit() < self.epsilon {
                children[self.rng.below(children.len())]
            } else {
                let mut best = children[0];
                for &c in &children[1..] {
                    if self.ucb(c) > self.ucb(best) {
                        best = c;
                    }
                }
                best
            };
        }
    }

    fn add_child(&mut self, parent: usize, chain: Chain) -> usize {
        self.seen.insert(chain.clone());
        let id = self.nodes.len();
        self.nodes.push(Node {
            chain,
            parent: Some(parent),
            children: Vec::new(),
            untried: None,
            visits: 0,
            total: 0.0,
            score: None,
        });
        self.nodes[parent].children.push(id);
        id
    }

    fn backup(&mut self, mut node: usize, score: f64) {
        loop {
            self.nodes[node].visits += 1;
            self.nodes[node].total += score;
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return,
            }
        }
    }
}

impl Search for Mcts {
    fn propose(&mut self) -> Vec<Chain> {
        if self.waiting.is_some() || self.done >= self.simulations {
            return Vec::new();
        }
        if self.nodes[0].score.is_none() {
            self.waiting = Some(0);
            return vec![self.nodes[0].chain.clone()];
        }
        for _ in 0..DEAD_ENDS {
            if self.done >= self.simulations {
                break;
            }
            match self.descend() {
                Ok(node) => {
                    self.waiting = Some(node);
                    return vec![self.nodes[node].chain.clone()];
                }
                Err(dead) => {
                    self.done += 1;
                    let s = self.nodes[dead].score.unwrap_or(0.0);
                    self.backup(dead, s);
                }
            }
        }
        self.done = self.simulations;
        Vec::new()
    }

    fn feed(&mut self, scores: &[f64]) {
        let (Some(node), Some(&score)) = (self.waiting.take(), scores.first()) else { return };
        self.done += 1;
        self.nodes[node].score = Some(score);
        self.evaluated.push((self.nodes[node].chain.clone(), score));
        self.backup(node, score);
    }

    fn evaluated(&self) -> &[(Chain, f64)] {
        &self.evaluated
    }
}
