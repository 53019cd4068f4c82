// Adam with decoupled weight decay (AdamW) and global-norm gradient clipping,
// over the tensors the trainer hands it. Written here with ATen ops rather
// than taken from torch::optim so that the tools stay on ATen like the engine.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>
#include <vector>

namespace la::miniature {

class Adam {
 public:
  Adam(std::vector<at::Tensor> params, double lr, double weight_decay = 0.0, double beta1 = 0.9,
       double beta2 = 0.99, double eps = 1e-8)
      : params_(std::move(params)), lr_(lr), wd_(weight_decay), b1_(beta1), b2_(beta2), eps_(eps) {
    for (auto& p : params_) {
      m_.push_back(at::zeros_like(p));
      v_.push_back(at::zeros_like(p));
    }
  }

  void zero_grad() {
    for (auto& p : params_)
      if (p.grad().defined()) p.mutable_grad().zero_();
  }

  // One update with learning rate lr * lr_scale; gradients are first scaled
  // down to a global norm of at most max_norm. Returns the norm before clipping.
  double step(double lr_scale = 1.0, double max_norm = 1.0) {
    c10::NoGradGuard no_grad;
    double sq = 0;
    for (auto& p : params_)
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    const double clip = norm > max_norm ? max_norm / (norm + 1e-12) : 1.0;
    ++t_;
    const double lr = lr_ * lr_scale;
    const double c1 = 1 - std::pow(b1_, t_), c2 = 1 - std::pow(b2_, t_);
    for (size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i];
      if (!p.grad().defined()) continue;
      const at::Tensor g = p.grad() * clip;
      m_[i].mul_(b1_).add_(g, 1 - b1_);
      v_[i].mul_(b2_).addcmul_(g, g, 1 - b2_);
      if (wd_ > 0) p.mul_(1 - lr * wd_);
      p.addcdiv_(m_[i] / c1, (v_[i] / c2).sqrt_().add_(eps_), -lr);
    }
    return norm;
  }

 private:
  std::vector<at::Tensor> params_, m_, v_;
  double lr_, wd_, b1_, b2_, eps_;
  int64_t t_ = 0;
};

}  // namespace la::miniature
