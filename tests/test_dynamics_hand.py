"""One step of a 2-consumer, 2-firm economy worked out by hand from spec section 3 and 5.

Two economies are stepped side by side (rows A and B) so that each branch of the step is taken at
least once: budget scaling (over budget, exactly at budget, zero budget), rationing (over-demanded
and not), exports (capped, uncapped, price exactly at the threshold, price below it, nothing left),
taxes on positive and negative profits, investment from positive and negative operating income,
production with and without labor, the CRRA utility, the labor disutility, the no-Ponzi penalty on
the last step only, and both welfare variants.

Every expected number below is a literal computed by hand; the comment next to it shows the
arithmetic. Nothing is copied from the implementation's output.

Economy (both rows): alpha = [0.5, 0.75], A = 0.01, eta = 0.1, export threshold 500 (inclusive),
export cap 5 (lowered from 100 so that it binds), tax grids and price/wage grids of spec 2,
hours grid [0, 16, 56, 200, 400] (chosen so that K^(1-alpha) L^alpha comes out round).

Start-of-step state                A                       B
  prices p                         [1000, 500]             [400, 2000]
  wages w                          [22, 11]                [33, 44]
  stocks y                         [1.9, 10]               [6, 3]
  income tax tau, corporate sigma  0.2, 0.5                0.4, 0.2
  time t (T = 10)                  3                       9 (last step)
  consumer budgets                 [3000, 2500]            [0, 1000]
  firm budgets                     [1000, -500]            [-2000, 50000]
  capital K                        [10000, 1296]           [10000, 1296]
  theta                            [0.01, 0.004]           [0.01, 0.004]

Actions                            A                       B
  consumer 0: attempted goods      [3, 4]                  [5, 0]
              hours @ employer     400 @ firm 0            56 @ firm 1
  consumer 1: attempted goods      [2, 1]                  [5, 1]
              hours @ employer     16 @ firm 1             200 @ firm 1
  firm choices (price, wage)       (1500, 33), (0, 0)      (2500, 44), (500, 11)
  government choice (tau, sigma)   (0.6, 0.8)              (1.0, 0.0)
No-Ponzi multipliers: consumer 3, firm 2 (penalty scales 1 and 100).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from envs.rbc.config import RBCConfig
from envs.rbc.dynamics import EconomyParameters, Penalties, decode_actions, step_economy
from envs.rbc.env import RBCEnv

from conftest import make_state

TINY = dict(
    n_consumers=2,
    n_firms=2,
    alpha=[0.5, 0.75],
    initial_capital=[10000.0, 1296.0],
    hours_grid=[0.0, 16.0, 56.0, 200.0, 400.0],
    export_quantity_cap=5.0,
)

STATE = dict(
    price=[[1000.0, 500.0], [400.0, 2000.0]],
    wage=[[22.0, 11.0], [33.0, 44.0]],
    inventory=[[1.9, 10.0], [6.0, 3.0]],
    overdemanded=[[0.0, 0.0], [0.0, 0.0]],
    income_tax=[0.2, 0.4],
    corporate_tax=[0.5, 0.2],
    time=[3.0, 9.0],
    consumer_budget=[[3000.0, 2500.0], [0.0, 1000.0]],
    firm_budget=[[1000.0, -500.0], [-2000.0, 50000.0]],
    capital=[[10000.0, 1296.0], [10000.0, 1296.0]],
    theta=[[0.01, 0.004], [0.01, 0.004]],
)

# Grid indices in the spec-2 layout. Consumer heads: [good 0, good 1, hours, employer].
CONSUMER_ACTION = [[[3, 4, 4, 0], [2, 1, 1, 1]], [[5, 0, 2, 1], [5, 1, 3, 1]]]
# Firm index = 5 * price_index + wage_index: (1500, 33) = 5*3+3 = 18, (0, 0) = 0, (2500, 44) = 5*5+4 = 29,
# (500, 11) = 5*1+1 = 6.
FIRM_ACTION = [[18, 0], [29, 6]]
# Government index = 6 * income_index + corporate_index: (0.6, 0.8) = 6*3+4 = 22, (1.0, 0.0) = 6*5+0 = 30.
GOVERNMENT_ACTION = [[22], [30]]
PENALTIES = Penalties(consumer=3.0, firm=2.0)

# u(c) = ((c + 1)^0.9 - 1) / 0.9, evaluated on a calculator:
U_0_9 = 0.868754587086831  # u(0.9) = (1.9^0.9 - 1)/0.9
U_2_4 = 2.2315204994885964  # u(2.4) = (3.4^0.9 - 1)/0.9
U_1 = 0.9622955367484609  # u(1) = (2^0.9 - 1)/0.9
U_1_25 = 1.194158667593208  # u(1.25) = (2.25^0.9 - 1)/0.9
U_0_25 = 0.24712884519851183  # u(0.25) = (1.25^0.9 - 1)/0.9


def close(actual, expected, rtol=1e-6, atol=1e-4):
    torch.testing.assert_close(
        actual.to(torch.float64), torch.tensor(expected, dtype=torch.float64), rtol=rtol, atol=atol
    )


def run(_penalties=PENALTIES, **config_changes):
    config = RBCConfig(**{**TINY, **config_changes})
    params = EconomyParameters.from_config(config)
    decisions = decode_actions(
        params, torch.tensor(CONSUMER_ACTION), torch.tensor(FIRM_ACTION), torch.tensor(GOVERNMENT_ACTION)
    )
    return step_economy(params, make_state(**STATE), decisions, _penalties)


def test_decoding_follows_spec_layout():
    params = EconomyParameters.from_config(RBCConfig(**TINY))
    d = decode_actions(
        params, torch.tensor(CONSUMER_ACTION), torch.tensor(FIRM_ACTION), torch.tensor(GOVERNMENT_ACTION)
    )
    close(d.attempted_consumption, [[[3, 4], [2, 1]], [[5, 0], [5, 1]]])
    close(d.hours, [[400, 16], [56, 200]])
    assert d.employer.tolist() == [[0, 1], [1, 1]]
    close(d.chosen_price, [[1500, 0], [2500, 500]])
    close(d.chosen_wage, [[33, 0], [44, 11]])
    close(d.chosen_income_tax, [0.6, 1.0])
    close(d.chosen_corporate_tax, [0.8, 0.0])


def test_consumers_budget_scaling_rationing_income_and_taxes():
    _, out = run()
    # Step 2. cost A = [3*1000+4*500 = 5000 > 3000 -> s = 0.6, 2*1000+1*500 = 2500 = budget -> s = 1]
    #              B = [5*400 = 2000 > 0 -> s = 0, 5*400+1*2000 = 4000 > 1000 -> s = 0.25]
    # demand A = [[1.8, 2.4], [2, 1]] -> D = [3.8, 3.4]; B = [[0, 0], [1.25, 0.25]] -> D = [1.25, 0.25]
    # Step 4/5. A good 0: 3.8 > 1.9 -> fill 1.9/3.8 = 0.5; everything else fits in stock.
    close(out.consumption, [[[0.9, 2.4], [1.0, 1.0]], [[0.0, 0.0], [1.25, 0.25]]])
    close(out.sales, [[1.9, 3.4], [1.25, 0.25]])
    # Step 6. z = wage of employer * hours: A [22*400, 11*16], B [44*56, 44*200]
    close(out.labor_income, [[8800.0, 176.0], [2464.0, 8800.0]])
    close(out.income_tax_paid, [[1760.0, 35.2], [985.6, 3520.0]])  # tau * z with tau = 0.2 | 0.4


def test_exports_under_threshold_and_cap():
    _, out = run()
    # A firm 0: 1.9 - 1.9 = 0 left. A firm 1: p = 500 >= 500, 10 - 3.4 = 6.6 left, cap 5 binds.
    # B firm 0: p = 400 < 500, nothing exported although 4.75 is left. B firm 1: 3 - 0.25 = 2.75 < cap.
    close(out.exports, [[0.0, 5.0], [0.0, 2.75]], atol=1e-5)
    _, strict = run(export_price_inclusive=False)  # paper's p > 500: A firm 1 at exactly 500 exports nothing
    close(strict.exports, [[0.0, 0.0], [0.0, 2.75]], atol=1e-5)
    _, closed = run(open_economy=False)
    close(closed.exports, [[0.0, 0.0], [0.0, 0.0]], atol=0)


def test_firm_accounts_with_operating_income_investment():
    _, out = run()
    close(out.revenue, [[1900.0, 4200.0], [500.0, 6000.0]])  # p*(C+X): 1000*1.9, 500*(3.4+5), 400*1.25, 2000*3
    close(out.wage_bill, [[8800.0, 176.0], [0.0, 11264.0]])  # 22*400, 11*16, 0, 44*(56+200)
    # G = [-6900, 4024 | 500, -5264]; I = max(0, 0.1 G) = [0, 402.4 | 50, 0]
    close(out.investment, [[0.0, 402.4], [50.0, 0.0]])
    close(out.profit, [[-6900.0, 3621.6], [450.0, -5264.0]])  # G - I
    close(out.corporate_tax_paid, [[0.0, 1810.8], [90.0, 0.0]])  # sigma*max(profit, 0): 0.5*3621.6, 0.2*450


def test_production_and_inventory():
    state, out = run()
    # Y = 0.01 K^(1-a) L^a.  A firm 0: 0.01*10000^0.5*400^0.5 = 0.01*100*20 = 20
    # A firm 1: 0.01*1296^0.25*16^0.75 = 0.01*6*8 = 0.48;  B firm 0: L = 0 -> 0
    # B firm 1: L = 56+200 = 256, 0.01*6*256^0.75 = 0.01*6*64 = 3.84
    close(out.production, [[20.0, 0.48], [0.0, 3.84]], atol=1e-5)
    # y' = y - C - X + Y: 1.9-1.9-0+20, 10-3.4-5+0.48, 6-1.25-0+0, 3-0.25-2.75+3.84
    close(state.inventory, [[20.0, 2.08], [4.75, 3.84]], atol=1e-5)
    _, floored = run(labor_floor=100.0)  # A firm 1's 16 hours are below the floor (B firm 1's 256 are not): no output, wage still paid
    close(floored.production, [[20.0, 0.0], [0.0, 3.84]], atol=1e-5)
    close(floored.wage_bill, [[8800.0, 176.0], [0.0, 11264.0]])


def test_redistribution_and_budgets():
    state, out = run()
    # R = income taxes + corporate taxes: A 1760+35.2+0+1810.8 = 3606; B 985.6+3520+90+0 = 4595.6
    close(out.tax_revenue, [3606.0, 4595.6])
    close(out.transfer, [[1803.0, 1803.0], [2297.8, 2297.8]])  # R / 2
    # B' = B - spending + (1 - tau) z + transfer
    # A: 3000-2100+8800-1760+1803 = 9743; 2500-1500+176-35.2+1803 = 2943.8
    # B: 0-0+2464-985.6+2297.8 = 3776.2; 1000-1000+8800-3520+2297.8 = 7577.8
    close(state.consumer_budget, [[9743.0, 2943.8], [3776.2, 7577.8]])
    # firm B' = B + profit - tax: 1000-6900, -500+3621.6-1810.8, -2000+450-90, 50000-5264
    close(state.firm_budget, [[-5900.0, 1310.8], [-1640.0, 44736.0]])
    close(state.capital, [[10000.0, 1698.4], [10050.0, 1296.0]])  # K + I


def test_next_global_state_takes_this_steps_choices():
    state, _ = run()
    close(state.price, [[1500.0, 0.0], [2500.0, 500.0]])
    close(state.wage, [[33.0, 0.0], [44.0, 11.0]])
    close(state.income_tax, [0.6, 1.0])
    close(state.corporate_tax, [0.8, 0.0])
    close(state.overdemanded, [[1.0, 0.0], [0.0, 0.0]], atol=0)
    close(state.time, [4.0, 10.0], atol=0)
    close(state.theta, STATE["theta"], atol=0)


def test_rewards_penalty_and_welfare():
    _, out = run()
    # consumer: sum_i u(c_ij) - (theta/2) * hours
    # A: u(0.9)+u(2.4) - 0.005*400 ; 2u(1) - 0.002*16.  B: 0 - 0.005*56 ; u(1.25)+u(0.25) - 0.002*200
    close(
        out.consumer_reward,
        [[U_0_9 + U_2_4 - 2.0, 2 * U_1 - 0.032], [-0.28, U_1_25 + U_0_25 - 0.4]],
        atol=2e-5,
    )
    # firm: profit - tax; on B's last step firm 0 ends at -1640: penalty 2 * 1640 / 100 = 32.8.
    # A is not the last step, so its negative firm budget (-5900) costs nothing.
    close(out.firm_reward, [[-6900.0, 1810.8], [360.0 - 32.8, -5264.0]])
    # welfare = sum consumer reward + 0.0025 * sum firm reward
    # A: 1.10027509 + 1.89259107 + 0.0025*(-6900+1810.8) = -9.73013384
    # B: -0.28 + 1.04128751 + 0.0025*(327.2-5264) = -11.58071249
    close(out.welfare, [-9.73013383992765, -11.580712487208281], atol=5e-5)


def test_no_penalty_without_multipliers_and_consumer_only_welfare():
    _, out = run(_penalties=Penalties(), welfare="consumer_only")
    close(out.firm_reward, [[-6900.0, 1810.8], [360.0, -5264.0]])
    # consumer-only welfare: A 1.10027509 + 1.89259107, B -0.28 + 1.04128751
    close(out.welfare, [2.9928661600723494, 0.7612875127917198], atol=2e-5)


def test_paper_labor_disutility_coefficient():
    _, out = run(labor_disutility_scale=1.0)  # theta * hours instead of theta/2 * hours
    # A: u(0.9)+u(2.4) - 0.01*400 = 3.10027509 - 4 ; 2u(1) - 0.004*16 = 1.92459107 - 0.064
    close(out.consumer_reward[0], [-0.8997249134245724, 1.8605910734969218], atol=2e-5)


def test_investment_from_budget_rule():
    state, out = run(investment_rule="budget")
    # I = max(0, 0.1 * start-of-step firm budget): A [0.1*1000, -] ; B [-, 0.1*50000]
    close(out.investment, [[100.0, 0.0], [0.0, 5000.0]])
    # profit = G - I: A [-6900-100, 4024-0]; B [500-0, -5264-5000]
    close(out.profit, [[-7000.0, 4024.0], [500.0, -10264.0]])
    close(out.corporate_tax_paid, [[0.0, 2012.0], [100.0, 0.0]])  # 0.5*4024, 0.2*500
    close(state.capital, [[10100.0, 1296.0], [10000.0, 6296.0]])
    # R: A 1760+35.2+2012 = 3807.2 -> 1903.6 each; B 985.6+3520+100 = 4605.6 -> 2302.8 each
    close(out.transfer, [[1903.6, 1903.6], [2302.8, 2302.8]])
    close(state.firm_budget, [[1000.0 - 7000.0, -500.0 + 2012.0], [-2000.0 + 400.0, 50000.0 - 10264.0]])


def test_closed_economy_accounts():
    state, out = run(open_economy=False)
    # A firm 1 no longer exports: Rev = 500*3.4 = 1700, G = 1700-176 = 1524, I = 152.4, profit 1371.6,
    # tax 0.5*1371.6 = 685.8, y' = 10-3.4+0.48 = 7.08. B firm 1: Rev = 2000*0.25 = 500, G = 500-11264.
    close(out.revenue, [[1900.0, 1700.0], [500.0, 500.0]])
    close(out.investment, [[0.0, 152.4], [50.0, 0.0]])
    close(out.corporate_tax_paid, [[0.0, 685.8], [90.0, 0.0]])
    close(state.inventory, [[20.0, 7.08], [4.75, 6.59]], atol=1e-5)  # B: 3-0.25+3.84
    close(out.transfer[:, 0], [(1760.0 + 35.2 + 685.8) / 2, 4595.6 / 2])


def test_budget_guard_and_interest():
    state, _ = run(consumer_budget_guard=0.01)  # the reference code's +0.01 per consumer per step
    close(state.consumer_budget, [[9743.01, 2943.81], [3776.21, 7577.81]])
    state, _ = run(interest_rate=0.1)  # interest on positive balances only
    close(state.consumer_budget, [[9743.0 * 1.1, 2943.8 * 1.1], [3776.2 * 1.1, 7577.8 * 1.1]], rtol=2e-6)
    close(state.firm_budget, [[-5900.0, 1310.8 * 1.1], [-1640.0, 44736.0 * 1.1]], rtol=2e-6)


def test_same_case_through_the_env():
    """The env decodes the same indices, runs the same step and lays every number out under its group."""
    env = RBCEnv(RBCConfig(**TINY), num_envs=2)
    env.reset()
    env._state = make_state(**STATE)
    env.set_no_ponzi_multipliers(consumer=3.0, firm=2.0)
    action = TensorDict(
        {
            "consumer": TensorDict({"action": torch.tensor(CONSUMER_ACTION)}, batch_size=(2, 2)),
            "firm": TensorDict({"action": torch.tensor(FIRM_ACTION)}, batch_size=(2, 2)),
            "government": TensorDict({"action": torch.tensor(GOVERNMENT_ACTION)}, batch_size=(2, 1)),
        },
        batch_size=(2,),
    )
    nxt = env.step(action)["next"]
    c, f, g = nxt["consumer"], nxt["firm"], nxt["government"]
    close(c["budget"], [[9743.0, 2943.8], [3776.2, 7577.8]])
    close(c["consumption"], [[[0.9, 2.4], [1.0, 1.0]], [[0.0, 0.0], [1.25, 0.25]]])
    close(c["hours"], [[400.0, 16.0], [56.0, 200.0]])
    assert c["employer"].tolist() == [[0, 1], [1, 1]]
    close(c["labor_income"], [[8800.0, 176.0], [2464.0, 8800.0]])
    close(c["income_tax"], [[1760.0, 35.2], [985.6, 3520.0]])
    close(c["transfer"], [[1803.0, 1803.0], [2297.8, 2297.8]])
    close(
        c["reward"].squeeze(-1),
        [[U_0_9 + U_2_4 - 2.0, 2 * U_1 - 0.032], [-0.28, U_1_25 + U_0_25 - 0.4]],
        atol=2e-5,
    )
    close(f["budget"], [[-5900.0, 1310.8], [-1640.0, 44736.0]])
    close(f["capital"], [[10000.0, 1698.4], [10050.0, 1296.0]])
    close(f["inventory"], [[20.0, 2.08], [4.75, 3.84]], atol=1e-5)
    close(f["price"], STATE["price"])  # the prices at which this step traded, not the new choices
    close(f["wage"], STATE["wage"])
    close(f["production"], [[20.0, 0.48], [0.0, 3.84]], atol=1e-5)
    close(f["sales"], [[1.9, 3.4], [1.25, 0.25]])
    close(f["exports"], [[0.0, 5.0], [0.0, 2.75]], atol=1e-5)
    close(f["revenue"], [[1900.0, 4200.0], [500.0, 6000.0]])
    close(f["wage_bill"], [[8800.0, 176.0], [0.0, 11264.0]])
    close(f["investment"], [[0.0, 402.4], [50.0, 0.0]])
    close(f["profit"], [[-6900.0, 3621.6], [450.0, -5264.0]])
    close(f["corporate_tax"], [[0.0, 1810.8], [90.0, 0.0]])
    close(f["reward"].squeeze(-1), [[-6900.0, 1810.8], [327.2, -5264.0]])
    close(g["income_tax_rate"], [[0.2], [0.4]])
    close(g["corporate_tax_rate"], [[0.5], [0.2]])
    close(g["revenue"], [[3606.0], [4595.6]])
    close(g["welfare"], [[-9.73013383992765], [-11.580712487208281]], atol=5e-5)
    close(g["reward"], [[[-9.73013383992765]], [[-11.580712487208281]]], atol=5e-5)
    assert nxt["done"].tolist() == [[False], [True]]  # B stepped from t = 9 to t = T = 10
    # Symlog global observation (spec 4.1 order): prices/2500, wages/44, stocks, flags, tau, sigma, t/10
    obs = nxt["global_observation"]
    close(obs[:, 0:2], [[1500 / 2500, 0.0], [1.0, 500 / 2500]])
    close(obs[:, 2:4], [[33 / 44, 0.0], [1.0, 11 / 44]])
    close(obs[:, 6:8], [[1.0, 0.0], [0.0, 0.0]], atol=0)
    close(obs[:, 8:], [[0.6, 0.8, 0.4], [1.0, 0.0, 1.0]])


def test_overdemand_flag_edges():
    """o_i = 1 only if D_i > 0 and D_i > y_i: demand equal to the stock, and zero demand on zero stock, are not flagged."""
    config = RBCConfig(**TINY)
    params = EconomyParameters.from_config(config)
    state = make_state(**{**STATE, "inventory": [[5.0, 0.0], [4.0, 0.0]], "consumer_budget": [[1e6, 1e6], [1e6, 1e6]]})
    # both economies: consumer 0 wants 2 of good 0, consumer 1 wants 3 -> D = [5, 0]
    consumer = torch.tensor([[[2, 0, 0, 0], [3, 0, 0, 0]], [[2, 0, 0, 0], [3, 0, 0, 0]]])
    decisions = decode_actions(params, consumer, torch.tensor(FIRM_ACTION), torch.tensor(GOVERNMENT_ACTION))
    nxt, out = step_economy(params, state, decisions, Penalties())
    # A: 5 = 5 -> not over-demanded, everyone served; 0 on a stock of 0 -> not flagged
    # B: 5 > 4 -> flagged, fill 4/5: consumers get 1.6 and 2.4
    close(nxt.overdemanded, [[0.0, 0.0], [1.0, 0.0]], atol=0)
    close(out.consumption[:, :, 0], [[2.0, 3.0], [1.6, 2.4]], atol=1e-6)
    close(out.sales, [[5.0, 0.0], [4.0, 0.0]], atol=1e-6)
