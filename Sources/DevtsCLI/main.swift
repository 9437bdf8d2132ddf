print("devts")
