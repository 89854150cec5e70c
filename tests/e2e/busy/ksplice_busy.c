// SPDX-License-Identifier: GPL-2.0
/*
 * The test module of the e2e code_busy check: while the parameter "hold" is
 * set, its thread sleeps inside msleep(), the function the check's update
 * replaces, so applying must abort with code_busy; once "hold" is cleared
 * the thread waits elsewhere and the update applies.
 */
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/wait.h>

static bool hold = true;
static DECLARE_WAIT_QUEUE_HEAD(busy_wq);
static struct task_struct *busy_thread;

static int hold_set(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_bool(val, kp);

	wake_up(&busy_wq);
	return ret;
}

static const struct kernel_param_ops hold_ops = {
	.set = hold_set,
	.get = param_get_bool,
};
module_param_cb(hold, &hold_ops, &hold, 0644);
MODULE_PARM_DESC(hold, "sleep inside msleep() while set");

static int busy_fn(void *unused)
{
	while (!kthread_should_stop()) {
		if (READ_ONCE(hold))
			msleep(20);
		else
			wait_event_interruptible(busy_wq, READ_ONCE(hold) ||
						 kthread_should_stop());
	}
	return 0;
}

static int __init busy_init(void)
{
	busy_thread = kthread_run(busy_fn, NULL, "ksplice_busy");
	return PTR_ERR_OR_ZERO(busy_thread);
}

static void __exit busy_exit(void)
{
	kthread_stop(busy_thread);
}

module_init(busy_init);
module_exit(busy_exit);
MODULE_DESCRIPTION("Ksplice e2e test: a thread inside msleep()");
MODULE_LICENSE("GPL");
