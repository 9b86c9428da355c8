// Host build of rbc_step.cuh: the kernels' phase functions run on the CPU, one simulated thread at a time,
// with the block barrier replaced by the end of each phase's thread loop. Loaded with ctypes by gpu/host.py
// so that the tests can compare the kernel arithmetic with the torch reference on a machine without a GPU.
//
// `n_threads` is the simulated block size; `reverse` runs the simulated threads of each phase in reverse
// order, which changes nothing unless a phase reads what another thread wrote in the same phase (a race on
// the device). The tests run both orders and require identical results.
#include <vector>

#include "rbc_step.cuh"

namespace {

#define RBC_NAME_ENTRY(name) #name ","

const char kFirmSlots[] = RBC_FIRM_SLOTS(RBC_NAME_ENTRY);
const char kStepConsumerSlots[] = RBC_STEP_CONSUMER_SLOTS(RBC_NAME_ENTRY);
const char kResetConsumerSlots[] = RBC_RESET_CONSUMER_SLOTS(RBC_NAME_ENTRY);
const char kEconomySlots[] = RBC_ECONOMY_SLOTS(RBC_NAME_ENTRY);

RbcState make_state(const float* const* s) {
  return RbcState{s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10]};
}

RbcOutputs make_outputs(int n_envs, float* const* o) {
  return RbcOutputs{n_envs, o[0], o[1], o[2], o[3], o[4], o[5], o[6]};
}

template <class Actions>
void run_step(const unsigned char* blob, int n_envs, const RbcState& state, const Actions& actions,
              float consumer_penalty, float firm_penalty, const RbcOutputs& out, int n_threads, int reverse) {
  const RbcParams* params = reinterpret_cast<const RbcParams*>(blob);
  const RbcParams& P = *params;
  const float* table = rbc_table(params);
  const double* moduli = rbc_moduli(params);
  std::vector<float> scratch(rbc_shared_floats(P.n_consumers, P.n_firms));
  const RbcShared shared = rbc_carve_shared(scratch.data(), P.n_consumers, P.n_firms);
  for (int e = 0; e < n_envs; ++e) {
    for (int phase = 0; phase < RBC_STEP_PHASES; ++phase) {
      for (int k = 0; k < n_threads; ++k) {
        const int tid = reverse ? n_threads - 1 - k : k;
        rbc_step_phase(phase, P, table, moduli, state, actions, out, shared, consumer_penalty, firm_penalty, e, tid,
                       n_threads);
      }
    }
  }
}

}  // namespace

extern "C" {

int rbc_host_abi_version() { return RBC_ABI_VERSION; }
int rbc_host_params_size() { return (int)sizeof(RbcParams); }
int rbc_host_max_block_threads() { return RBC_MAX_BLOCK_THREADS; }
int rbc_host_shared_floats(int n_consumers, int n_firms) { return rbc_shared_floats(n_consumers, n_firms); }

// Slot names of one output group (0 firm, 1 step consumer, 2 reset consumer, 3 economy), comma-terminated.
const char* rbc_host_slot_names(int group) {
  switch (group) {
    case 0: return kFirmSlots;
    case 1: return kStepConsumerSlots;
    case 2: return kResetConsumerSlots;
    case 3: return kEconomySlots;
    default: return "";
  }
}

// state: 11 pointers in EconomyState order; actions: consumer, firm, government index arrays;
// outputs: firm, consumer, economy, consumption, global_obs, consumer_obs, firm_obs (the last three may be null).
void rbc_host_step_indexed(const unsigned char* blob, int n_envs, const float* const* state,
                           const long long* const* actions, float consumer_penalty, float firm_penalty,
                           float* const* outputs, int* error, int n_threads, int reverse) {
  const RbcIndexedActions act{actions[0], actions[1], actions[2], error};
  run_step(blob, n_envs, make_state(state), act, consumer_penalty, firm_penalty, make_outputs(n_envs, outputs),
           n_threads, reverse);
}

// decisions: attempted_consumption, hours, chosen_price, chosen_wage, chosen_income_tax, chosen_corporate_tax
// (floats) plus the employer index array.
void rbc_host_step_decoded(const unsigned char* blob, int n_envs, const float* const* state,
                           const float* const* decisions, const long long* employer, float consumer_penalty,
                           float firm_penalty, float* const* outputs, int* error, int n_threads, int reverse) {
  const RbcDecodedActions act{decisions[0], decisions[1], employer,     decisions[2],
                              decisions[3], decisions[4], decisions[5], error};
  run_step(blob, n_envs, make_state(state), act, consumer_penalty, firm_penalty, make_outputs(n_envs, outputs),
           n_threads, reverse);
}

// state: 11 pointers or null (full reset); mask: one byte per economy or null; outputs as for the step,
// without consumption (pass null in its place).
void rbc_host_reset(const unsigned char* blob, int n_envs, const float* const* state, const unsigned char* mask,
                    float anneal, float* const* outputs, int n_threads, int reverse) {
  static const float* const kNoState[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const RbcParams* params = reinterpret_cast<const RbcParams*>(blob);
  const RbcState current = make_state(state ? state : kNoState);
  const RbcOutputs out = make_outputs(n_envs, outputs);
  for (int e = 0; e < n_envs; ++e) {
    for (int k = 0; k < n_threads; ++k) {
      const int tid = reverse ? n_threads - 1 - k : k;
      rbc_reset_agents(*params, rbc_table(params), rbc_moduli(params), current, mask, anneal, out, e, tid,
                       n_threads);
    }
  }
}

}  // extern "C"
