// CUDA entry points of the RBC economy, compiled at run time with NVRTC (see gpu/backend.py).
//
// Layout: one block per economy (blockIdx.x), one thread per agent (consumers first, then firms, then the
// government; economies with more agents than RBC_MAX_BLOCK_THREADS stride several agents per thread).
// Each launch is a whole step or reset of every economy; the phases of rbc_step.cuh are separated by
// __syncthreads(). Dynamic shared memory holds the per-consumer and per-firm scratch of
// rbc_shared_floats(C, F) floats.
//
// Arguments are raw device pointers into torch tensors (no copies) and 4-byte scalars; the state pointers
// come in the field order of envs.rbc.dynamics.EconomyState.
#include "rbc_step.cuh"

#define RBC_STATE_PARAMS                                                                                    \
  const float* __restrict__ price, const float* __restrict__ wage, const float* __restrict__ inventory,    \
      const float* __restrict__ overdemanded, const float* __restrict__ income_tax,                        \
      const float* __restrict__ corporate_tax, const float* __restrict__ time,                             \
      const float* __restrict__ consumer_budget, const float* __restrict__ firm_budget,                    \
      const float* __restrict__ capital, const float* __restrict__ theta

#define RBC_STATE_INIT                                                                                \
  {                                                                                                   \
    price, wage, inventory, overdemanded, income_tax, corporate_tax, time, consumer_budget, firm_budget, \
        capital, theta                                                                                \
  }

template <class Actions>
__device__ __forceinline__ void rbc_step_block(const unsigned char* blob, int n_envs, const RbcState& state,
                                               const Actions& actions, float consumer_penalty, float firm_penalty,
                                               const RbcOutputs& out) {
  const int e = blockIdx.x;
  if (e >= n_envs) return;  // uniform across the block, so no barrier is skipped by part of it
  const RbcParams* params = reinterpret_cast<const RbcParams*>(blob);
  const RbcParams P = *params;
  const float* table = rbc_table(params);
  const double* moduli = rbc_moduli(params);
  extern __shared__ float scratch[];
  const RbcShared shared = rbc_carve_shared(scratch, P.n_consumers, P.n_firms);
  for (int phase = 0; phase < RBC_STEP_PHASES; ++phase) {
    rbc_step_phase(phase, P, table, moduli, state, actions, out, shared, consumer_penalty, firm_penalty, e,
                   (int)threadIdx.x, (int)blockDim.x);
    __syncthreads();
  }
}

// The fused environment step: grid indices from the policies in, next state, flows, rewards, decoded hours
// and the observations of the next state out.
extern "C" __global__ void __launch_bounds__(RBC_MAX_BLOCK_THREADS, RBC_MIN_BLOCKS_PER_SM)
rbc_step_indexed(const unsigned char* blob, int n_envs, RBC_STATE_PARAMS,
                                            const long long* __restrict__ consumer_action,
                                            const long long* __restrict__ firm_action,
                                            const long long* __restrict__ government_action, float consumer_penalty,
                                            float firm_penalty, float* out_firm, float* out_consumer,
                                            float* out_economy, float* consumption, float* global_obs,
                                            float* consumer_obs, float* firm_obs, int* error) {
  const RbcState state = RBC_STATE_INIT;
  const RbcIndexedActions actions = {consumer_action, firm_action, government_action, error};
  const RbcOutputs out = {n_envs,      out_firm,   out_consumer, out_economy,
                          consumption, global_obs, consumer_obs, firm_obs};
  rbc_step_block(blob, n_envs, state, actions, consumer_penalty, firm_penalty, out);
}

// The drop-in replacement of dynamics.step_economy: decoded decisions in (see decode_actions).
extern "C" __global__ void __launch_bounds__(RBC_MAX_BLOCK_THREADS, RBC_MIN_BLOCKS_PER_SM)
rbc_step_decoded(const unsigned char* blob, int n_envs, RBC_STATE_PARAMS,
                                            const float* __restrict__ attempted_consumption,
                                            const float* __restrict__ hours, const long long* __restrict__ employer,
                                            const float* __restrict__ chosen_price,
                                            const float* __restrict__ chosen_wage,
                                            const float* __restrict__ chosen_income_tax,
                                            const float* __restrict__ chosen_corporate_tax, float consumer_penalty,
                                            float firm_penalty, float* out_firm, float* out_consumer,
                                            float* out_economy, float* consumption, float* global_obs,
                                            float* consumer_obs, float* firm_obs, int* error) {
  const RbcState state = RBC_STATE_INIT;
  const RbcDecodedActions actions = {attempted_consumption, hours,          employer,           chosen_price,
                                     chosen_wage,           chosen_income_tax, chosen_corporate_tax, error};
  const RbcOutputs out = {n_envs,      out_firm,   out_consumer, out_economy,
                          consumption, global_obs, consumer_obs, firm_obs};
  rbc_step_block(blob, n_envs, state, actions, consumer_penalty, firm_penalty, out);
}

// Full or partial reset plus the observations of the resulting state. `mask` (bool per economy) may be
// null for a full reset, and then the state pointers may be null too.
extern "C" __global__ void __launch_bounds__(RBC_MAX_BLOCK_THREADS, RBC_MIN_BLOCKS_PER_SM)
rbc_reset(const unsigned char* blob, int n_envs, RBC_STATE_PARAMS,
                                     const unsigned char* __restrict__ mask, float anneal, float* out_firm,
                                     float* out_consumer, float* out_economy, float* global_obs, float* consumer_obs,
                                     float* firm_obs) {
  const int e = blockIdx.x;
  if (e >= n_envs) return;
  const RbcParams* params = reinterpret_cast<const RbcParams*>(blob);
  const RbcParams P = *params;
  const RbcState current = RBC_STATE_INIT;
  const RbcOutputs out = {n_envs, out_firm, out_consumer, out_economy, 0, global_obs, consumer_obs, firm_obs};
  rbc_reset_agents(P, rbc_table(params), rbc_moduli(params), current, mask, anneal, out, e, (int)threadIdx.x,
                   (int)blockDim.x);
}
