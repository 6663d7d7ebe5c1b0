//! Which Burn backend a command runs on. Backends are Cargo features of this binary (`flex`,
//! `wgpu`, `cuda`); `cargo xtask … --backend X` builds with the matching feature and passes the
//! flag on, so the generic model code is compiled for one backend at a time.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Burn's pure-Rust CPU backend (the default; the fastest CPU backend measured here).
    Flex,
    /// WGPU (Vulkan); on a machine without a GPU it needs a software driver such as lavapipe.
    Wgpu,
    /// NVIDIA CUDA.
    Cuda,
    /// LibTorch (PyTorch's C++ library) on the CPU.
    Tch,
}

impl BackendChoice {
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Flex => "flex",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Cuda => "cuda",
            BackendChoice::Tch => "tch",
        }
    }
}

/// Runs `$body` with `$b` bound to the autodiff backend type and `$dev` to its device, after
/// checking that the device starts ([`start`]).
#[macro_export]
macro_rules! with_backend {
    ($choice:expr, |$b:ident, $dev:ident| $body:expr) => {{
        #[allow(unreachable_patterns)]
        match $choice {
            #[cfg(feature = "flex")]
            $crate::backend::BackendChoice::Flex => {
                type $b = burn::backend::Autodiff<burn::backend::Flex>;
                let $dev = burn::backend::flex::FlexDevice;
                $crate::backend::start::<$b>("flex", &$dev).and_then(|()| $body)
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendChoice::Wgpu => {
                type $b = burn::backend::Autodiff<burn::backend::Wgpu>;
                let $dev = burn::backend::wgpu::WgpuDevice::default();
                $crate::backend::start::<$b>("wgpu", &$dev).and_then(|()| $body)
            }
            #[cfg(feature = "cuda")]
            $crate::backend::BackendChoice::Cuda => {
                type $b = burn::backend::Autodiff<burn::backend::Cuda>;
                let $dev = burn::backend::cuda::CudaDevice::default();
                $crate::backend::start::<$b>("cuda", &$dev).and_then(|()| $body)
            }
            #[cfg(feature = "tch")]
            $crate::backend::BackendChoice::Tch => {
                type $b = burn::backend::Autodiff<burn::backend::LibTorch>;
                let $dev = burn::backend::libtorch::LibTorchDevice::Cpu;
                $crate::backend::start::<$b>("tch", &$dev).and_then(|()| $body)
            }
            other => Err(anyhow::anyhow!(
                "this binary was built without the `{0}` backend; run the command through \
                 `cargo xtask <command> --backend {0}`, which builds it with `--features {0}`",
                other.name()
            )),
        }
    }};
}

/// Starts the backend's device with one small operation, turning the panic a backend raises when
/// its device is missing (no Vulkan adapter, no CUDA driver) into an error with a fix. Only this
/// start-up runs under a silenced panic hook: a panic later in a command keeps its message and
/// location.
pub fn start<B: burn::tensor::backend::Backend>(
    name: &str,
    device: &B::Device,
) -> anyhow::Result<()> {
    let result = seqpe_train::panics::catch_quietly(|| {
        let t = burn::tensor::Tensor::<B, 1>::ones([4], device);
        let _ = t.sum().into_data();
    });
    match result {
        Ok(()) => Ok(()),
        Err(msg) => {
            let hint = if msg.contains("No possible adapter") || msg.contains("adapter") {
                "no Vulkan/GPU adapter was found: install a GPU driver (or `apt-get install \
                 mesa-vulkan-drivers libvulkan1` for the lavapipe software driver), or use \
                 `--backend flex`"
            } else if msg.contains("cuda") || msg.contains("CUDA") {
                "the CUDA driver could not be used: run on a machine with an NVIDIA GPU and \
                 driver, or use `--backend flex`"
            } else {
                "the device could not be started; try `--backend flex`"
            };
            Err(anyhow::anyhow!(
                "the {name} backend failed to start: {msg}\nhint: {hint}"
            ))
        }
    }
}
