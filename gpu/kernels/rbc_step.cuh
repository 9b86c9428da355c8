// The RBC economy's step, reset and observation encoders for one economy, written once for two builds:
//   - the CUDA kernels in rbc_step.cu (NVRTC at run time; one block per economy, one thread per agent);
//   - the host library built from host_shim.cpp (g++), which runs the very same phase functions thread by
//     thread on the CPU so that the tests can compare them with the torch reference without a GPU.
//
// A step is a short sequence of phases. Within a phase every thread works only on its own agents and
// reads only what earlier phases wrote; the barrier between phases is __syncthreads() on the device and
// the end of the thread loop on the host. Per-firm and per-economy sums are done by the one thread that
// owns the firm (or the government), in a fixed order, so results do not depend on scheduling.
//
// Semantics follow envs/rbc/dynamics.py (step_economy, initial_state, decode_actions) and
// envs/rbc/observations.py (ObservationEncoder) operation by operation, in float32, except the digit
// encoding, which is computed in double exactly like the torch reference.
#ifndef DGE_MARL_RBC_STEP_CUH
#define DGE_MARL_RBC_STEP_CUH

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define RBC_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define RBC_HD inline
#endif

// Bumped whenever the argument lists or the parameter block change; checked by the Python side.
#define RBC_ABI_VERSION 1

// Largest block the kernels are built for; larger economies stride several agents per thread. With at
// least 4 such blocks per SM the compiler keeps to 64 registers, so 8 blocks of 128 threads (the paper's
// economy) fit on an SM at once.
#define RBC_MAX_BLOCK_THREADS 256
#define RBC_MIN_BLOCKS_PER_SM 4

// ----------------------------------------------------------------------------------------------------
// Output slots. Each group is one (slots, E, n) array; the Python side carves it into named views.
// The names are the field names of EconomyState / StepOutcome (plus "hours", the decoded hours).
#define RBC_FIRM_SLOTS(X)                                                                               \
  X(price) X(wage) X(inventory) X(overdemanded) X(firm_budget) X(capital) X(production) X(sales)        \
  X(exports) X(revenue) X(wage_bill) X(investment) X(profit) X(corporate_tax_paid) X(firm_reward)
#define RBC_STEP_CONSUMER_SLOTS(X) \
  X(consumer_budget) X(labor_income) X(income_tax_paid) X(transfer) X(consumer_reward) X(hours)
#define RBC_RESET_CONSUMER_SLOTS(X) X(consumer_budget) X(theta)
#define RBC_ECONOMY_SLOTS(X) X(income_tax) X(corporate_tax) X(time) X(tax_revenue) X(welfare)

#define RBC_ENUM_FIRM(name) RBC_FIRM_##name,
#define RBC_ENUM_STEP_CONSUMER(name) RBC_STEP_CONSUMER_##name,
#define RBC_ENUM_RESET_CONSUMER(name) RBC_RESET_CONSUMER_##name,
#define RBC_ENUM_ECONOMY(name) RBC_ECONOMY_##name,
enum RbcFirmSlot { RBC_FIRM_SLOTS(RBC_ENUM_FIRM) RBC_FIRM_SLOT_COUNT };
enum RbcStepConsumerSlot { RBC_STEP_CONSUMER_SLOTS(RBC_ENUM_STEP_CONSUMER) RBC_STEP_CONSUMER_SLOT_COUNT };
enum RbcResetConsumerSlot { RBC_RESET_CONSUMER_SLOTS(RBC_ENUM_RESET_CONSUMER) RBC_RESET_CONSUMER_SLOT_COUNT };
enum RbcEconomySlot { RBC_ECONOMY_SLOTS(RBC_ENUM_ECONOMY) RBC_ECONOMY_SLOT_COUNT };
// A reset writes only the state slots, which come first in the firm and economy groups.
#define RBC_FIRM_STATE_SLOTS 6
#define RBC_ECONOMY_STATE_SLOTS 3

// Error codes written when an action index is outside its grid (the index is clamped and the step goes on).
enum RbcError {
  RBC_OK = 0,
  RBC_BAD_CONSUMPTION = 1,
  RBC_BAD_HOURS = 2,
  RBC_BAD_EMPLOYER = 3,
  RBC_BAD_FIRM_ACTION = 4,
  RBC_BAD_GOVERNMENT_ACTION = 5
};

// ----------------------------------------------------------------------------------------------------
// Parameters: one block of bytes, built once per configuration by gpu/layout.py. Only 4-byte fields, so
// the layout is the same for g++, NVRTC and the ctypes mirror. A float table follows the struct (grids and
// per-agent constants, at the offsets below, in floats from the table start), then an 8-byte aligned table
// of doubles for the digit moduli.
struct RbcParams {
  int abi_version;
  int n_consumers, n_firms, n_heads, episode_length;
  int n_levels, n_hours, n_prices, n_wages, n_income, n_corporate;
  int encoding;  // 0: nested-remainder digits, 1: symlog
  int n_digits, width, global_dim, consumer_obs_dim, firm_obs_dim;
  int open_economy, export_inclusive, invest_from_budget, apply_interest;
  int off_consumption_grid, off_hours_grid, off_price_grid, off_wage_grid, off_income_grid, off_corporate_grid;
  int off_alpha, off_initial_capital, off_base_theta;
  int moduli_byte_offset;  // from the start of the block
  float productivity, one_minus_eta, labor_disutility_scale, investment_fraction, interest_factor;
  float labor_floor, export_min_price, export_quantity_cap, consumer_budget_guard, welfare_firm_weight;
  float consumer_penalty_scale, firm_penalty_scale;
  float initial_price, initial_wage, initial_inventory, initial_income_tax, initial_corporate_tax;
  float initial_consumer_budget, initial_firm_budget;
  float price_scale, wage_scale, time_scale, theta_scale, capital_scale, symlog_scale;
};

RBC_HD const float* rbc_table(const RbcParams* params) {
  return reinterpret_cast<const float*>(reinterpret_cast<const unsigned char*>(params) + sizeof(RbcParams));
}

RBC_HD const double* rbc_moduli(const RbcParams* params) {
  return reinterpret_cast<const double*>(reinterpret_cast<const unsigned char*>(params) + params->moduli_byte_offset);
}

// ----------------------------------------------------------------------------------------------------
// Elementwise helpers that mirror torch's semantics (clamp_min/clamp_max propagate NaN, unlike fmaxf).
RBC_HD float rbc_clamp_min(float x, float lo) { return x < lo ? lo : x; }
RBC_HD float rbc_clamp_max(float x, float hi) { return x > hi ? hi : x; }

RBC_HD float rbc_crra(float consumption, float one_minus_eta) {
  return (powf(consumption + 1.0f, one_minus_eta) - 1.0f) / one_minus_eta;
}

// Writes `width` features for one wide-range amount (stock or budget), like ObservationEncoder.encode_amount.
// Digits: floor-mod in double, as the reference does, so that remainders of amounts up to 1e10 stay exact.
RBC_HD void rbc_encode_amount(const RbcParams& P, const double* moduli, float x, float* out) {
  if (P.encoding == 0) {
    const double wide = (double)x;
    for (int k = 0; k < P.n_digits; ++k) {
      const double m = moduli[k];
      double r = fmod(wide, m);
      if (r < 0.0) r += m;
      out[k] = (float)(r / m);
    }
  } else {
    const float sign = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    out[0] = sign * log1pf(fabsf(x)) / P.symlog_scale;
  }
}

// Records the first invalid action index of a launch; later ones are dropped.
RBC_HD void rbc_flag_error(int* error, int code, int economy, int agent, long long value) {
  if (error == 0) return;
#ifdef __CUDA_ARCH__
  if (atomicCAS(error, 0, code) == 0) {
    error[1] = economy;
    error[2] = agent;
    error[3] = (int)value;
  }
#else
  if (error[0] == 0) {
    error[0] = code;
    error[1] = economy;
    error[2] = agent;
    error[3] = (int)value;
  }
#endif
}

RBC_HD int rbc_checked_index(long long raw, int n, int* error, int code, int economy, int agent) {
  if (raw < 0 || raw >= n) {
    rbc_flag_error(error, code, economy, agent, raw);
    return raw < 0 ? 0 : n - 1;
  }
  return (int)raw;
}

// ----------------------------------------------------------------------------------------------------
// Two ways to read the agents' decisions, both used by the same step phases:
// grid indices straight from the policies (the fused environment step), or already decoded quantities
// (the drop-in replacement of dynamics.step_economy, whose callers decode with decode_actions).
struct RbcIndexedActions {
  const long long* consumer;    // (E, C, F + 2): goods..., hours, employer
  const long long* firm;        // (E, F): price index * n_wages + wage index
  const long long* government;  // (E,): income index * n_corporate + corporate index
  int* error;

  RBC_HD float attempted(const RbcParams& P, const float* table, int e, int j, int i) const {
    const long long raw = consumer[((long long)e * P.n_consumers + j) * P.n_heads + i];
    return table[P.off_consumption_grid + rbc_checked_index(raw, P.n_levels, error, RBC_BAD_CONSUMPTION, e, j)];
  }
  RBC_HD float hours(const RbcParams& P, const float* table, int e, int j) const {
    const long long raw = consumer[((long long)e * P.n_consumers + j) * P.n_heads + P.n_firms];
    return table[P.off_hours_grid + rbc_checked_index(raw, P.n_hours, error, RBC_BAD_HOURS, e, j)];
  }
  RBC_HD int employer(const RbcParams& P, int e, int j) const {
    const long long raw = consumer[((long long)e * P.n_consumers + j) * P.n_heads + P.n_firms + 1];
    return rbc_checked_index(raw, P.n_firms, error, RBC_BAD_EMPLOYER, e, j);
  }
  RBC_HD int firm_action(const RbcParams& P, int e, int i) const {
    return rbc_checked_index(firm[(long long)e * P.n_firms + i], P.n_prices * P.n_wages, error,
                             RBC_BAD_FIRM_ACTION, e, P.n_consumers + i);
  }
  RBC_HD float chosen_price(const RbcParams& P, const float* table, int e, int i) const {
    return table[P.off_price_grid + firm_action(P, e, i) / P.n_wages];
  }
  RBC_HD float chosen_wage(const RbcParams& P, const float* table, int e, int i) const {
    return table[P.off_wage_grid + firm_action(P, e, i) % P.n_wages];
  }
  RBC_HD int government_action(const RbcParams& P, int e) const {
    return rbc_checked_index(government[e], P.n_income * P.n_corporate, error, RBC_BAD_GOVERNMENT_ACTION, e,
                             P.n_consumers + P.n_firms);
  }
  RBC_HD float chosen_income_tax(const RbcParams& P, const float* table, int e) const {
    return table[P.off_income_grid + government_action(P, e) / P.n_corporate];
  }
  RBC_HD float chosen_corporate_tax(const RbcParams& P, const float* table, int e) const {
    return table[P.off_corporate_grid + government_action(P, e) % P.n_corporate];
  }
};

struct RbcDecodedActions {
  const float* attempted_consumption;  // (E, C, F)
  const float* hours_worked;           // (E, C)
  const long long* employer_index;     // (E, C)
  const float* price;                  // (E, F)
  const float* wage;                   // (E, F)
  const float* income_tax;             // (E,)
  const float* corporate_tax;          // (E,)
  int* error;

  RBC_HD float attempted(const RbcParams& P, const float*, int e, int j, int i) const {
    return attempted_consumption[((long long)e * P.n_consumers + j) * P.n_firms + i];
  }
  RBC_HD float hours(const RbcParams& P, const float*, int e, int j) const {
    return hours_worked[(long long)e * P.n_consumers + j];
  }
  RBC_HD int employer(const RbcParams& P, int e, int j) const {
    return rbc_checked_index(employer_index[(long long)e * P.n_consumers + j], P.n_firms, error, RBC_BAD_EMPLOYER,
                             e, j);
  }
  RBC_HD float chosen_price(const RbcParams& P, const float*, int e, int i) const {
    return price[(long long)e * P.n_firms + i];
  }
  RBC_HD float chosen_wage(const RbcParams& P, const float*, int e, int i) const {
    return wage[(long long)e * P.n_firms + i];
  }
  RBC_HD float chosen_income_tax(const RbcParams&, const float*, int e) const { return income_tax[e]; }
  RBC_HD float chosen_corporate_tax(const RbcParams&, const float*, int e) const { return corporate_tax[e]; }
};

// ----------------------------------------------------------------------------------------------------
// Inputs and outputs of one launch. All arrays are dense, row-major, economy-major (E first).
struct RbcState {
  const float* price;            // (E, F)
  const float* wage;             // (E, F)
  const float* inventory;        // (E, F)
  const float* overdemanded;     // (E, F)
  const float* income_tax;       // (E,)
  const float* corporate_tax;    // (E,)
  const float* time;             // (E,)
  const float* consumer_budget;  // (E, C)
  const float* firm_budget;      // (E, F)
  const float* capital;          // (E, F)
  const float* theta;            // (E, C)
};

struct RbcOutputs {
  int n_envs;
  float* firm;          // (slots, E, F)
  float* consumer;      // (slots, E, C)
  float* economy;       // (slots, E)
  float* consumption;   // (E, C, F); step only
  float* global_obs;    // (E, global_dim) or null: observations are skipped
  float* consumer_obs;  // (E, C, consumer_obs_dim) or null
  float* firm_obs;      // (E, F, firm_obs_dim) or null

  RBC_HD float& firm_slot(int slot, int e, int i, int F) const {
    return firm[((long long)slot * n_envs + e) * F + i];
  }
  RBC_HD float& consumer_slot(int slot, int e, int j, int C) const {
    return consumer[((long long)slot * n_envs + e) * C + j];
  }
  RBC_HD float& economy_slot(int slot, int e) const { return economy[(long long)slot * n_envs + e]; }
};

// Block-shared scratch: per-consumer values written in phase 0, per-firm values in phase 1, the tax
// revenue in phase 2. Employers are stored as floats (exact below 2^24 firms) to keep one array type.
#define RBC_SHARED_PER_CONSUMER 5
#define RBC_SHARED_PER_FIRM 3
RBC_HD int rbc_shared_floats(int n_consumers, int n_firms) {
  return RBC_SHARED_PER_CONSUMER * n_consumers + RBC_SHARED_PER_FIRM * n_firms + 1;
}

struct RbcShared {
  float* scale;          // [C] budget scale of the consumer's demand
  float* hours;          // [C]
  float* employer;       // [C]
  float* income_tax;     // [C] income tax paid
  float* reward;         // [C]
  float* fill;           // [F] rationing fill rate
  float* corporate_tax;  // [F]
  float* firm_reward;    // [F]
  float* tax_revenue;    // [1]
};

RBC_HD RbcShared rbc_carve_shared(float* base, int C, int F) {
  RbcShared s;
  s.scale = base;
  s.hours = base + C;
  s.employer = base + 2 * C;
  s.income_tax = base + 3 * C;
  s.reward = base + 4 * C;
  s.fill = base + 5 * C;
  s.corporate_tax = base + 5 * C + F;
  s.firm_reward = base + 5 * C + 2 * F;
  s.tax_revenue = base + 5 * C + 3 * F;
  return s;
}

// ----------------------------------------------------------------------------------------------------
// Observation writers (ObservationEncoder): the global part once per economy, private parts per agent.
RBC_HD void rbc_write_firm_observations(const RbcParams& P, const double* moduli, const float* table,
                                        const RbcOutputs& out, int e, int i, float price, float wage,
                                        float inventory, float overdemanded, float budget, float capital) {
  const int F = P.n_firms;
  if (out.global_obs != 0) {
    float* g = out.global_obs + (long long)e * P.global_dim;
    g[i] = price / P.price_scale;
    g[F + i] = wage / P.wage_scale;
    rbc_encode_amount(P, moduli, inventory, g + 2 * F + i * P.width);
    g[2 * F + F * P.width + i] = overdemanded;
  }
  if (out.firm_obs != 0) {
    float* f = out.firm_obs + ((long long)e * F + i) * P.firm_obs_dim;
    rbc_encode_amount(P, moduli, budget, f);
    f[P.width] = capital / P.capital_scale;
    f[P.width + 1] = table[P.off_alpha + i];
    for (int k = 0; k < F; ++k) f[P.width + 2 + k] = k == i ? 1.0f : 0.0f;
  }
}

RBC_HD void rbc_write_economy_observations(const RbcParams& P, const RbcOutputs& out, int e, float income_tax,
                                           float corporate_tax, float time) {
  if (out.global_obs == 0) return;
  float* g = out.global_obs + (long long)e * P.global_dim + 3 * P.n_firms + P.n_firms * P.width;
  g[0] = income_tax;
  g[1] = corporate_tax;
  g[2] = time / P.time_scale;
}

RBC_HD void rbc_write_consumer_observations(const RbcParams& P, const double* moduli, const RbcOutputs& out,
                                            int e, int j, float budget, float theta) {
  if (out.consumer_obs == 0) return;
  float* c = out.consumer_obs + ((long long)e * P.n_consumers + j) * P.consumer_obs_dim;
  rbc_encode_amount(P, moduli, budget, c);
  c[P.width] = theta / P.theta_scale;
}

// ----------------------------------------------------------------------------------------------------
// The step (spec section 3), in five phases separated by block barriers.
#define RBC_STEP_PHASES 5

template <class Actions>
RBC_HD void rbc_step_phase(int phase, const RbcParams& P, const float* table, const double* moduli,
                           const RbcState& s, const Actions& act, const RbcOutputs& out, const RbcShared& sh,
                           float consumer_penalty, float firm_penalty, int e, int tid, int n_threads) {
  const int C = P.n_consumers;
  const int F = P.n_firms;
  const int n_agents = C + F + 1;
  const long long ef = (long long)e * F;
  const long long ec = (long long)e * C;
  const float next_time = s.time[e] + 1.0f;
  const float is_last_step = next_time >= (float)P.episode_length ? 1.0f : 0.0f;

  for (int a = tid; a < n_agents; a += n_threads) {
    if (phase == 0 && a < C) {
      // Steps 2 and 6 (consumer side): budget-scaled demand, labor income and its tax.
      const int j = a;
      float cost = 0.0f;
      for (int i = 0; i < F; ++i) cost += act.attempted(P, table, e, j, i) * s.price[ef + i];
      const float budget = s.consumer_budget[ec + j];
      sh.scale[j] = cost > budget ? budget / rbc_clamp_min(cost, 1e-30f) : 1.0f;
      const float hours = act.hours(P, table, e, j);
      const int employer = act.employer(P, e, j);
      sh.hours[j] = hours;
      sh.employer[j] = (float)employer;
      sh.income_tax[j] = s.income_tax[e] * (s.wage[ef + employer] * hours);
    } else if (phase == 1 && a >= C && a < C + F) {
      // Steps 3-5 and 7-10 for one firm: its sums over consumers, then its accounts.
      const int i = a - C;
      float demand = 0.0f;
      float hours_employed = 0.0f;
      for (int j = 0; j < C; ++j) {
        demand += act.attempted(P, table, e, j, i) * sh.scale[j];
        if ((int)sh.employer[j] == i) hours_employed += sh.hours[j];
      }
      const float stock = s.inventory[ef + i];
      const bool overdemanded = demand > 0.0f && demand > stock;
      const float fill = overdemanded ? stock / rbc_clamp_min(demand, 1e-30f) : 1.0f;
      float sales = 0.0f;
      for (int j = 0; j < C; ++j) sales += (act.attempted(P, table, e, j, i) * sh.scale[j]) * fill;

      const float price = s.price[ef + i];
      const float wage = s.wage[ef + i];
      const float unsold = rbc_clamp_min(stock - sales, 0.0f);
      float exports = 0.0f;
      if (P.open_economy) {
        const bool accepted = P.export_inclusive ? price >= P.export_min_price : price > P.export_min_price;
        exports = accepted ? rbc_clamp_max(unsold, P.export_quantity_cap) : 0.0f;
      }
      const float revenue = price * (sales + exports);
      const float wage_bill = wage * hours_employed;
      const float operating_income = revenue - wage_bill;
      const float budget = s.firm_budget[ef + i];
      const float investment_base = P.invest_from_budget ? budget : operating_income;
      const float investment = rbc_clamp_min(P.investment_fraction * investment_base, 0.0f);
      const float profit = operating_income - investment;
      const float corporate_tax = s.corporate_tax[e] * rbc_clamp_min(profit, 0.0f);
      const float budget_change = profit - corporate_tax;

      const float alpha = table[P.off_alpha + i];
      const float capital = s.capital[ef + i];
      const float labor = hours_employed >= P.labor_floor ? hours_employed : 0.0f;
      const float production = P.productivity * powf(capital, 1.0f - alpha) * powf(labor, alpha);
      const float next_inventory = rbc_clamp_min(stock - sales - exports, 0.0f) + production;

      float next_budget = budget + budget_change;
      if (P.apply_interest && next_budget > 0.0f) next_budget = next_budget * P.interest_factor;
      const float next_capital = capital + investment;
      const float debt = rbc_clamp_min(-next_budget, 0.0f) / P.firm_penalty_scale;
      const float reward = budget_change - is_last_step * firm_penalty * debt;
      const float next_price = act.chosen_price(P, table, e, i);
      const float next_wage = act.chosen_wage(P, table, e, i);
      const float flag = overdemanded ? 1.0f : 0.0f;

      out.firm_slot(RBC_FIRM_price, e, i, F) = next_price;
      out.firm_slot(RBC_FIRM_wage, e, i, F) = next_wage;
      out.firm_slot(RBC_FIRM_inventory, e, i, F) = next_inventory;
      out.firm_slot(RBC_FIRM_overdemanded, e, i, F) = flag;
      out.firm_slot(RBC_FIRM_firm_budget, e, i, F) = next_budget;
      out.firm_slot(RBC_FIRM_capital, e, i, F) = next_capital;
      out.firm_slot(RBC_FIRM_production, e, i, F) = production;
      out.firm_slot(RBC_FIRM_sales, e, i, F) = sales;
      out.firm_slot(RBC_FIRM_exports, e, i, F) = exports;
      out.firm_slot(RBC_FIRM_revenue, e, i, F) = revenue;
      out.firm_slot(RBC_FIRM_wage_bill, e, i, F) = wage_bill;
      out.firm_slot(RBC_FIRM_investment, e, i, F) = investment;
      out.firm_slot(RBC_FIRM_profit, e, i, F) = profit;
      out.firm_slot(RBC_FIRM_corporate_tax_paid, e, i, F) = corporate_tax;
      out.firm_slot(RBC_FIRM_firm_reward, e, i, F) = reward;
      rbc_write_firm_observations(P, moduli, table, out, e, i, next_price, next_wage, next_inventory, flag,
                                  next_budget, next_capital);
      sh.fill[i] = fill;
      sh.corporate_tax[i] = corporate_tax;
      sh.firm_reward[i] = reward;
    } else if (phase == 2 && a == C + F) {
      // Steps 10-11 (government): revenue to redistribute, next tax rates, time.
      float income_taxes = 0.0f;
      for (int j = 0; j < C; ++j) income_taxes += sh.income_tax[j];
      float corporate_taxes = 0.0f;
      for (int i = 0; i < F; ++i) corporate_taxes += sh.corporate_tax[i];
      const float revenue = income_taxes + corporate_taxes;
      sh.tax_revenue[0] = revenue;
      const float next_income_tax = act.chosen_income_tax(P, table, e);
      const float next_corporate_tax = act.chosen_corporate_tax(P, table, e);
      out.economy_slot(RBC_ECONOMY_income_tax, e) = next_income_tax;
      out.economy_slot(RBC_ECONOMY_corporate_tax, e) = next_corporate_tax;
      out.economy_slot(RBC_ECONOMY_time, e) = next_time;
      out.economy_slot(RBC_ECONOMY_tax_revenue, e) = revenue;
      rbc_write_economy_observations(P, out, e, next_income_tax, next_corporate_tax, next_time);
    } else if (phase == 3 && a < C) {
      // Steps 5-6, 11-13 (consumer side): rationed consumption, budget with transfer, reward.
      const int j = a;
      const float scale = sh.scale[j];
      float spending = 0.0f;
      float utility = 0.0f;
      float* consumption = out.consumption + (ec + j) * F;
      for (int i = 0; i < F; ++i) {
        const float c = (act.attempted(P, table, e, j, i) * scale) * sh.fill[i];
        consumption[i] = c;
        spending += c * s.price[ef + i];
        utility += rbc_crra(c, P.one_minus_eta);
      }
      const float hours = sh.hours[j];
      const float labor_income = s.wage[ef + (int)sh.employer[j]] * hours;
      const float income_tax = sh.income_tax[j];
      const float transfer = sh.tax_revenue[0] / (float)C;
      const float change = P.consumer_budget_guard - spending + labor_income - income_tax;
      float next_budget = rbc_clamp_min(s.consumer_budget[ec + j] + change + transfer, 0.0f);
      if (P.apply_interest && next_budget > 0.0f) next_budget = next_budget * P.interest_factor;
      const float theta = s.theta[ec + j];
      const float disutility = P.labor_disutility_scale * theta * hours;
      const float debt = rbc_clamp_min(-next_budget, 0.0f) / P.consumer_penalty_scale;
      const float reward = utility - disutility - is_last_step * consumer_penalty * debt;
      out.consumer_slot(RBC_STEP_CONSUMER_consumer_budget, e, j, C) = next_budget;
      out.consumer_slot(RBC_STEP_CONSUMER_labor_income, e, j, C) = labor_income;
      out.consumer_slot(RBC_STEP_CONSUMER_income_tax_paid, e, j, C) = income_tax;
      out.consumer_slot(RBC_STEP_CONSUMER_transfer, e, j, C) = transfer;
      out.consumer_slot(RBC_STEP_CONSUMER_consumer_reward, e, j, C) = reward;
      out.consumer_slot(RBC_STEP_CONSUMER_hours, e, j, C) = hours;
      rbc_write_consumer_observations(P, moduli, out, e, j, next_budget, theta);
      sh.reward[j] = reward;
    } else if (phase == 4 && a == C + F) {
      // Welfare of this step in the configured variant (the government's reward).
      float consumer_rewards = 0.0f;
      for (int j = 0; j < C; ++j) consumer_rewards += sh.reward[j];
      float firm_rewards = 0.0f;
      for (int i = 0; i < F; ++i) firm_rewards += sh.firm_reward[i];
      out.economy_slot(RBC_ECONOMY_welfare, e) = consumer_rewards + P.welfare_firm_weight * firm_rewards;
    }
  }
}

// ----------------------------------------------------------------------------------------------------
// Reset (spec 1.3): economies whose mask is set (or all, without a mask) get the initial state; the others
// keep `current`. Observations of the resulting state are written either way. One phase, no scratch.
RBC_HD void rbc_reset_agents(const RbcParams& P, const float* table, const double* moduli, const RbcState& current,
                             const unsigned char* mask, float anneal, const RbcOutputs& out, int e, int tid,
                             int n_threads) {
  const int C = P.n_consumers;
  const int F = P.n_firms;
  const long long ef = (long long)e * F;
  const long long ec = (long long)e * C;
  const bool fresh = mask == 0 || mask[e] != 0;
  for (int a = tid; a < C + F + 1; a += n_threads) {
    if (a < C) {
      const int j = a;
      const float budget = fresh ? P.initial_consumer_budget : current.consumer_budget[ec + j];
      const float theta = fresh ? table[P.off_base_theta + j] * anneal : current.theta[ec + j];
      out.consumer_slot(RBC_RESET_CONSUMER_consumer_budget, e, j, C) = budget;
      out.consumer_slot(RBC_RESET_CONSUMER_theta, e, j, C) = theta;
      rbc_write_consumer_observations(P, moduli, out, e, j, budget, theta);
    } else if (a < C + F) {
      const int i = a - C;
      const float price = fresh ? P.initial_price : current.price[ef + i];
      const float wage = fresh ? P.initial_wage : current.wage[ef + i];
      const float inventory = fresh ? P.initial_inventory : current.inventory[ef + i];
      const float overdemanded = fresh ? 0.0f : current.overdemanded[ef + i];
      const float budget = fresh ? P.initial_firm_budget : current.firm_budget[ef + i];
      const float capital = fresh ? table[P.off_initial_capital + i] : current.capital[ef + i];
      out.firm_slot(RBC_FIRM_price, e, i, F) = price;
      out.firm_slot(RBC_FIRM_wage, e, i, F) = wage;
      out.firm_slot(RBC_FIRM_inventory, e, i, F) = inventory;
      out.firm_slot(RBC_FIRM_overdemanded, e, i, F) = overdemanded;
      out.firm_slot(RBC_FIRM_firm_budget, e, i, F) = budget;
      out.firm_slot(RBC_FIRM_capital, e, i, F) = capital;
      rbc_write_firm_observations(P, moduli, table, out, e, i, price, wage, inventory, overdemanded, budget,
                                  capital);
    } else {
      const float income_tax = fresh ? P.initial_income_tax : current.income_tax[e];
      const float corporate_tax = fresh ? P.initial_corporate_tax : current.corporate_tax[e];
      const float time = fresh ? 0.0f : current.time[e];
      out.economy_slot(RBC_ECONOMY_income_tax, e) = income_tax;
      out.economy_slot(RBC_ECONOMY_corporate_tax, e) = corporate_tax;
      out.economy_slot(RBC_ECONOMY_time, e) = time;
      rbc_write_economy_observations(P, out, e, income_tax, corporate_tax, time);
    }
  }
}

#endif  // DGE_MARL_RBC_STEP_CUH
