//! The input generator: which target each input goes to, and from which seed and with
//! which mutations it is made.
//!
//! Contract: [`Generator::input`] is a pure function of the generator (built once from the
//! repository's files) and the random stream, so `(campaign seed, input index)` names an
//! input. The mix keeps at least a fifth of all inputs building to TIR: 45% are programs
//! known to build with freshly sampled choices and at most one light edit; 25% are heavy
//! mutations of any seed in any mode; the rest go to the TIR text (10%), data readers
//! (12%) and manifest (8%) targets.

use crate::corpus::Corpus;
use crate::data;
use crate::input::{ArchMode, DataKind, Input, Target};
use crate::manifest;
use crate::mutate;
use crate::rng::Rng;
use crate::targets;
use crate::tir;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Everything inputs are made from.
pub struct Generator {
    pub corpus: Corpus,
    /// Files whose entry builds with sampled choices (seed 0).
    pub buildable: Vec<usize>,
    /// Files whose `train` block builds a train program.
    pub trainable: Vec<usize>,
    /// Printed programs (entries and train steps) of the corpus.
    pub tir: Vec<String>,
    pub data: data::Seeds,
}

impl Generator {
    /// Builds the corpus under `root` once, noting what builds; `scratch` is a folder for
    /// the data seeds. A seed that panics is simply not used as a building seed (the
    /// campaign finds that panic anyway).
    pub fn new(root: &Path, scratch: &Path) -> Result<Generator, String> {
        let corpus = Corpus::load(root)?;
        let data = data::Seeds::build(scratch)?;
        let mut g = Generator { corpus, buildable: Vec::new(), trainable: Vec::new(), tir: Vec::new(), data };
        for i in 0..g.corpus.files.len() {
            g.note(i);
        }
        Ok(g)
    }

    fn note(&mut self, i: usize) {
        let text = &self.corpus.files[i].text;
        let opts = archc_compiler::sema::Options {
            choices: archc_compiler::sema::ChoiceMode::Sample(0),
            ..Default::default()
        };
        let nomod = archc_compiler::sema::NoModules;
        let built =
            catch_unwind(AssertUnwindSafe(|| archc_compiler::sema::check_file("main.arch", text, &nomod, &opts)));
        if let Ok(Some(p)) = built.map(|o| o.program) {
            self.buildable.push(i);
            self.tir.push(p.to_string());
        }
        if self.corpus.files[i].has_train {
            if let Ok(Some(p)) = catch_unwind(AssertUnwindSafe(|| targets::build_train(text))) {
                self.trainable.push(i);
                self.tir.push(p.to_string());
            }
        }
    }

    /// The input for this random stream.
    pub fn input(&self, r: &mut Rng) -> Input {
        match r.below(100) {
            0..=44 if !self.buildable.is_empty() => self.light_arch(r),
            0..=69 => self.heavy_arch(r),
            70..=79 if !self.tir.is_empty() => {
                Input::new(Target::Tir, tir::mutate(r.pick::<String>(&self.tir), r).into_bytes())
            }
            70..=91 => self.data_file(r),
            _ => Input::new(Target::Manifest, manifest::mutate(r).into_bytes()),
        }
    }

    /// A building seed with fresh choices (or its train block), at most one light edit.
    fn light_arch(&self, r: &mut Rng) -> Input {
        let train = !self.trainable.is_empty() && r.chance(0.2);
        let i = if train { *r.pick(&self.trainable) } else { *r.pick(&self.buildable) };
        let seed = &self.corpus.files[i].text;
        let text = if r.chance(0.5) { mutate::light(seed, r) } else { seed.clone() };
        let mode = if train { ArchMode::Train } else { ArchMode::Build(r.below(1000) as u64) };
        Input::new(Target::Arch(mode), text.into_bytes())
    }

    /// Any seed, 1 to 4 heavy edits, any mode.
    fn heavy_arch(&self, r: &mut Rng) -> Input {
        let file = r.pick(&self.corpus.files);
        let text = mutate::heavy(&file.text, &self.corpus, 1 + r.below(4), r);
        let mode = match r.below(10) {
            0..=2 => ArchMode::Check,
            3..=7 => ArchMode::Build(r.below(1000) as u64),
            _ => ArchMode::Train,
        };
        Input::new(Target::Arch(mode), text.into_bytes())
    }

    fn data_file(&self, r: &mut Rng) -> Input {
        let (kind, seed): &(DataKind, Vec<u8>) = r.pick(&self.data.files);
        Input::new(Target::Data(*kind), data::mutate(*kind, seed, r))
    }
}
