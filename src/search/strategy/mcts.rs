//! Monte Carlo tree search with UCT over the decisions, in the order builds meet them.
//!
//! A node is a prefix of (decision, option) pairs. The decision that follows a prefix is
//! the first decision, not in the prefix, of the prefix resolved with [`Rest::First`]
//! (looked up once per node); a node whose resolution has no further decision is a leaf,
//! one complete candidate. An ask descends from the root: a node with options not yet in
//! the tree expands one of them, drawn uniformly, and the candidate is a rollout, the new
//! node's prefix resolved with [`Rest::Sample`]; otherwise the walk enters a child never
//! visited (lowest option first) or the child maximising `Q/n + c*sqrt(ln N / n)`, with
//! `Q/n` the child's mean score mapped to [0, 1] by the lowest and highest scores told so
//! far (a failed trial counts 0) and `c` = [`Settings::exploration`].
//!
//! Only expanded nodes join the tree (one per descent), not the rollout's later
//! decisions. A tell backs its score up through every tree node on the told candidate's
//! decisions, whichever descent (or fallback) produced it.
//!
//! Repeats: a rollout that gives a candidate already asked is discarded and the descent
//! starts again (the new node stays, unvisited, so the next descent goes deeper). A leaf
//! whose candidate was asked is closed, and so is a node whose options are all in the
//! tree and closed; descents skip closed nodes, and once the root is closed every
//! candidate has been asked and `ask` gives `None`. After [`Settings::retries`] discarded
//! descents the ask falls back to a random sample, a repeat if that repeats too.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{draw_seed, rng, Seen, Settings, Strategy};
use crate::search::space::{Candidate, Decision, Rest, Space};

/// What follows a node's prefix, once looked up.
enum Next {
    /// The decision met after the prefix.
    Decision(Decision),
    /// The prefix is complete: this candidate.
    Leaf(Candidate),
}

struct Node {
    prefix: Vec<(String, usize)>,
    parent: Option<usize>,
    next: Option<Next>,
    children: Vec<Option<usize>>,
    /// Tells through this node, failed ones included.
    visits: u32,
    /// The number and sum of the scores told through this node.
    scored: u32,
    sum: f64,
    closed: bool,
}

impl Node {
    fn new(prefix: Vec<(String, usize)>, parent: Option<usize>) -> Node {
        Node { prefix, parent, next: None, children: Vec::new(), visits: 0, scored: 0, sum: 0.0, closed: false }
    }
}

/// Where a descent ended.
enum Step {
    /// A node just added: roll out from it.
    Expanded(usize),
    /// A leaf not closed yet.
    Leaf(usize),
}

/// UCT tree search.
pub struct Mcts {
    rng: ChaCha8Rng,
    seen: Seen,
    nodes: Vec<Node>,
    exploration: f64,
    retries: usize,
    low: f64,
    high: f64,
}

impl Mcts {
    pub fn new(settings: &Settings) -> Mcts {
        Mcts {
            rng: rng(settings.seed),
            seen: Seen::default(),
            nodes: vec![Node::new(Vec::new(), None)],
            exploration: settings.exploration,
            retries: settings.retries,
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
        }
    }

    /// Looks up what follows node `id` if not known yet.
    fn look_up(&mut self, id: usize, space: &mut dyn Space) -> Result<(), String> {
        if self.nodes[id].next.is_some() {
            return Ok(());
        }
        let node = &mut self.nodes[id];
        let cand = space.resolve(&node.prefix, Rest::First)?;
        let known = |d: &Decision| node.prefix.iter().any(|(n, _)| *n == d.name);
        node.next = Some(match cand.decisions.iter().find(|d| !known(d)) {
            Some(d) => {
                node.children = vec![None; d.options.len()];
                Next::Decision(d.clone())
            }
            None => Next::Leaf(cand),
        });
        Ok(())
    }

    /// Adds the child of `id` for option `option` of its decision.
    fn expand(&mut self, id: usize, option: usize) -> usize {
        let Some(Next::Decision(d)) = &self.nodes[id].next else { unreachable!("expanding a leaf") };
        let mut prefix = self.nodes[id].prefix.clone();
        prefix.push((d.name.clone(), option));
        self.nodes.push(Node::new(prefix, Some(id)));
        let child = self.nodes.len() - 1;
        self.nodes[id].children[option] = Some(child);
        child
    }

    /// The mean score of node `id` mapped to [0, 1].
    fn value(&self, id: usize) -> f64 {
        let node = &self.nodes[id];
        let norm = if self.high > self.low {
            (node.sum - node.scored as f64 * self.low) / (self.high - self.low)
        } else {
            node.scored as f64
        };
        norm / node.visits as f64
    }

    /// The open child of `id` the descent enters: unvisited first, else the best UCT.
    fn pick(&self, id: usize) -> Option<usize> {
        let open: Vec<usize> =
            self.nodes[id].children.iter().flatten().copied().filter(|&c| !self.nodes[c].closed).collect();
        if let Some(&fresh) = open.iter().find(|&&c| self.nodes[c].visits == 0) {
            return Some(fresh);
        }
        let log_n = (self.nodes[id].visits.max(1) as f64).ln();
        let uct = |c: usize| self.value(c) + self.exploration * (log_n / self.nodes[c].visits as f64).sqrt();
        open.into_iter().fold(None, |best: Option<usize>, c| match best {
            Some(b) if uct(b) >= uct(c) => Some(b),
            _ => Some(c),
        })
    }

    /// Descends from the root to a new node or an open leaf.
    fn descend(&mut self, space: &mut dyn Space) -> Result<Step, String> {
        let mut id = 0;
        loop {
            self.look_up(id, space)?;
            if let Some(Next::Leaf(_)) = self.nodes[id].next {
                return Ok(Step::Leaf(id));
            }
            let missing: Vec<usize> =
                (0..self.nodes[id].children.len()).filter(|&o| self.nodes[id].children[o].is_none()).collect();
            if !missing.is_empty() {
                let option = missing[self.rng.random_range(0..missing.len())];
                return Ok(Step::Expanded(self.expand(id, option)));
            }
            id = self.pick(id).expect("an open node has an open child");
        }
    }

    /// Closes node `id`, then every ancestor whose options are all in the tree and closed.
    fn close(&mut self, id: usize) {
        self.nodes[id].closed = true;
        let mut at = self.nodes[id].parent;
        while let Some(p) = at {
            let done = self.nodes[p].children.iter().all(|c| c.is_some_and(|c| self.nodes[c].closed));
            if !done {
                break;
            }
            self.nodes[p].closed = true;
            at = self.nodes[p].parent;
        }
    }

    /// One descent: the candidate it gives, or `None` when that candidate was asked before.
    fn attempt(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String> {
        let cand = match self.descend(space)? {
            Step::Leaf(id) => {
                self.close(id);
                let Some(Next::Leaf(cand)) = &self.nodes[id].next else { unreachable!("a leaf") };
                cand.clone()
            }
            Step::Expanded(id) => {
                let seed = draw_seed(&mut self.rng);
                space.resolve(&self.nodes[id].prefix, Rest::Sample(seed))?
            }
        };
        Ok(self.seen.insert(&cand).then_some(cand))
    }
}

impl Strategy for Mcts {
    fn ask(&mut self, space: &mut dyn Space) -> Result<Option<Candidate>, String> {
        for _ in 0..=self.retries {
            if self.nodes[0].closed {
                return Ok(None);
            }
            if let Some(cand) = self.attempt(space)? {
                return Ok(Some(cand));
            }
        }
        let rng = &mut self.rng;
        let cand = self.seen.draw_unseen(self.retries, || space.resolve(&[], Rest::Sample(draw_seed(rng))))?;
        Ok(Some(cand))
    }

    fn tell(&mut self, cand: &Candidate, score: Option<f64>) {
        if let Some(s) = score {
            self.low = self.low.min(s);
            self.high = self.high.max(s);
        }
        let mut id = 0;
        loop {
            let node = &mut self.nodes[id];
            node.visits += 1;
            if let Some(s) = score {
                node.scored += 1;
                node.sum += s;
            }
            let Some(Next::Decision(d)) = &node.next else { break };
            let Some(option) = cand.get(&d.name) else { break };
            let Some(child) = node.children.get(option).copied().flatten() else { break };
            id = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::search::strategy::testing::{best, flat, run, separable, toy};

    fn settings(seed: u64) -> Settings {
        Settings { seed, ..Settings::default() }
    }

    #[test]
    fn finds_the_optimum_of_a_separable_objective() {
        for seed in 0..5 {
            let trials = run(&mut Mcts::new(&settings(seed)), &mut toy(), 500, separable);
            assert_eq!(best(&trials), 5.0, "seed {seed}");
        }
    }

    #[test]
    fn covers_a_small_space_without_repeats_then_stops() {
        let mut space = toy();
        let mut mcts = Mcts::new(&Settings { seed: 1, retries: 100_000, ..Settings::default() });
        let trials = run(&mut mcts, &mut space, 3000, separable);
        let keys: HashSet<String> = trials.iter().map(|(c, _)| c.key()).collect();
        assert_eq!(trials.len(), 2340, "every candidate once, then None");
        assert_eq!(keys.len(), 2340);
    }

    #[test]
    fn scores_back_up_along_the_told_candidate() {
        let mut space = flat(2, 3);
        let mut mcts = Mcts::new(&settings(0));
        let first = mcts.ask(&mut space).unwrap().unwrap();
        mcts.tell(&first, Some(2.0));
        let second = mcts.ask(&mut space).unwrap().unwrap();
        mcts.tell(&second, None);
        // root, `depth` (one option), then one `cell_0.x` node expanded by the second ask
        let stats: Vec<(u32, u32, f64)> = mcts.nodes.iter().map(|n| (n.visits, n.scored, n.sum)).collect();
        assert_eq!(stats, [(2, 1, 2.0), (2, 1, 2.0), (1, 0, 0.0)]);
        let (name, option) = mcts.nodes[2].prefix.last().unwrap();
        assert_eq!(second.get(name), Some(*option));
    }

    #[test]
    fn looks_up_each_node_once() {
        let mut space = toy();
        run(&mut Mcts::new(&settings(3)), &mut space, 200, separable);
        // per ask: the new node's rollout, and the decision of the node the last ask added
        assert!(space.resolves <= 2 * 200 + 10, "{} resolves for 200 asks", space.resolves);
    }

    #[test]
    fn concentrates_on_the_better_branch() {
        let mut space = toy();
        let mut mcts = Mcts::new(&settings(5));
        let objective = |c: &Candidate| if c.get("depth") == Some(2) { 1.0 } else { 0.0 };
        let trials = run(&mut mcts, &mut space, 300, objective);
        let late = trials[150..].iter().filter(|(_, s)| *s == 1.0).count();
        assert!(late > 100, "only {late} of the last 150 trials took the better depth");
    }
}
