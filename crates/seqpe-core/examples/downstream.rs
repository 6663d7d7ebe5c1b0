//! A downstream crate that depends on `seqpe-core` alone and adds SeqPE to its own small Burn
//! model: a 2-layer causal transformer that must output the token it saw `LAG` steps earlier,
//! a task that cannot be solved without position information.
//!
//! ```sh
//! cargo run -p seqpe-core --example downstream
//! ```

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use seqpe_core::digits::max_digits_for;
use seqpe_core::position::{SeqPeConfig, SeqPeInjection};
use seqpe_core::transformer::{Transformer, TransformerConfig};
use seqpe_core::{
    AttentionOptions, AttnMask, PeKind, PositionEncoding, PositionEncodingConfig, PositionGrid,
    SeqPeEncoderConfig,
};

const VOCAB: usize = 16;
const LAG: usize = 3;
const LEN: usize = 24;

/// The downstream model: embeddings, the shared stack, and SeqPE as its position encoding.
#[derive(Module, Debug)]
struct LagModel<B: Backend> {
    embed: Embedding<B>,
    positions: PositionEncoding<B>,
    stack: Transformer<B>,
    head: Linear<B>,
}

impl<B: Backend> LagModel<B> {
    fn new(device: &B::Device) -> Self {
        let d = 32;
        // SeqPE with the GPT recipe: 5 digits (positions up to 99 999), p_q·p_k added to the logits.
        let seqpe = SeqPeConfig::new(SeqPeEncoderConfig::new(1, max_digits_for(20_000), 32, d, 2))
            .with_injection(SeqPeInjection::AttnScalar);
        Self {
            embed: EmbeddingConfig::new(VOCAB, d).init(device),
            positions: PositionEncodingConfig::new(PeKind::SeqPe, d, 2, 2, vec![LEN])
                .with_seqpe(Some(seqpe))
                .init(device),
            stack: TransformerConfig::new(d, 2, 2).init(device),
            head: LinearConfig::new(d, VOCAB).init(device),
        }
    }

    fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, len] = tokens.dims();
        let grid = PositionGrid::sequence(len);
        let ctx = self
            .positions
            .context(&grid, batch, None, &tokens.device())
            .expect("positions fit the digit width");
        let x = ctx.add_to_input(self.embed.forward(tokens));
        let h = self.stack.forward(
            x,
            AttnMask::Causal,
            |i| ctx.layer(i),
            AttentionOptions::default(),
        );
        self.head.forward(h)
    }
}

fn main() {
    type B = Autodiff<Flex>;
    let device = FlexDevice;
    let mut model = LagModel::<B>::new(&device);
    let mut optim = AdamWConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for step in 0..=150 {
        let tokens: Tensor<B, 2, Int> =
            Tensor::<B, 2>::random([16, LEN], Distribution::Uniform(0.0, VOCAB as f64), &device)
                .int();
        let targets = tokens.clone().narrow(1, 0, LEN - LAG);
        let logits = model.forward(tokens).narrow(1, LAG, LEN - LAG);
        let loss = loss_fn.forward(
            logits.reshape([16 * (LEN - LAG), VOCAB]),
            targets.reshape([16 * (LEN - LAG)]),
        );
        if step % 25 == 0 {
            println!("step {step:3}  loss {:.3}", loss.clone().into_scalar());
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
}
